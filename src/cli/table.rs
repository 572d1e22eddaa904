//! Output for people (aligned tables) or scripts (JSON).

use serde::Serialize;

/// How to print results.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `rows` as a table under `headers`.
    pub fn print<T: Serialize>(&self, value: &T, headers: &[&str], rows: Vec<Vec<String>>) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => outln!("{text}"),
                Err(e) => eprintln!("error: cannot encode JSON: {e}"),
            }
        } else {
            out!("{}", render(headers, &rows));
        }
    }
}

/// Left-aligned columns, two spaces apart.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A percentage for tables.
pub fn pct(x: f64) -> String {
    format!("{x}%")
}
