//! Versioned encoding of everything the store persists or sends to peers.
//!
//! - version 1: `[1] ++ MessagePack(value)` (named fields). Read forever; written only on the
//!   wire (`encode_wire`), where TCP/TLS guard the bytes and older nodes must still read
//!   what newer ones send during a rolling upgrade.
//! - version 2: `[2] ++ CRC-32(body) as 4 little-endian bytes ++ body`, body as in version 1.
//!   Everything persisted is written so; a value whose checksum does not match is refused.
//!
//! The CRC is `crc32fast` (CRC-32/ISO-HDLC): it is already what sled checksums its own log
//! with (no new dependency), is SIMD-accelerated, and catches every burst error up to 32 bits
//! and any odd number of flipped bits, which is what a torn or rotted record looks like.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// MessagePack with named fields, no checksum.
pub const FORMAT_V1: u8 = 1;
/// Version 1's body behind a CRC-32.
pub const FORMAT_V2: u8 = 2;

fn body<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), StoreError> {
    rmp_serde::encode::write_named(out, value).map_err(|e| StoreError::Encode(e.to_string()))
}

/// `[FORMAT_V2] ++ crc ++ MessagePack(value)`: how every persisted value is written.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V2, 0, 0, 0, 0];
    body(&mut out, value)?;
    let crc = crc32fast::hash(&out[5..]);
    out[1..5].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// `[FORMAT_V1] ++ MessagePack(value)`: node-to-node messages (readable by older nodes).
pub fn encode_wire<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V1];
    body(&mut out, value)?;
    Ok(out)
}

/// Checks a value's version and checksum without decoding it (cheap enough to run over a
/// whole log at start). Version 1 values carry no checksum and pass.
pub fn verify(bytes: &[u8]) -> Result<(), StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, _)) => Ok(()),
        Some((&FORMAT_V2, rest)) => checked_body(bytes.len(), rest).map(|_| ()),
        Some((v, _)) => Err(StoreError::Decode(format!("unknown format version {v}"))),
        None => Err(StoreError::Decode("empty value".into())),
    }
}

/// The body of a version 2 value (after its version byte), once its checksum matches.
fn checked_body(len: usize, rest: &[u8]) -> Result<&[u8], StoreError> {
    let Some((stored, body)) = rest.split_first_chunk::<4>() else {
        return Err(StoreError::Damaged(format!(
            "{len} bytes, shorter than a format 2 header"
        )));
    };
    let stored = u32::from_le_bytes(*stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(StoreError::Damaged(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x} over {} bytes)",
            body.len()
        )));
    }
    Ok(body)
}

/// Decodes what `encode` or `encode_wire` wrote (or an older node wrote), refusing unknown
/// format versions and damaged values.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let msgpack =
        |body: &[u8]| rmp_serde::from_slice(body).map_err(|e| StoreError::Decode(e.to_string()));
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => msgpack(body),
        Some((&FORMAT_V2, rest)) => msgpack(checked_body(bytes.len(), rest)?),
        Some((v, _)) => Err(StoreError::Decode(format!("unknown format version {v}"))),
        None => Err(StoreError::Decode("empty value".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_round_trips_and_refuses_any_flipped_bit() {
        let value = ("gate", 42u64, vec![1.5f64, 2.5]);
        let bytes = encode(&value).expect("encode");
        assert_eq!(bytes[0], FORMAT_V2);
        assert_eq!(
            decode::<(String, u64, Vec<f64>)>(&bytes).expect("decode").1,
            42
        );
        for i in 1..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1 << bit;
                let err = decode::<(String, u64, Vec<f64>)>(&damaged).expect_err("damaged");
                assert!(
                    err.to_string().contains("checksum"),
                    "byte {i} bit {bit}: {err}"
                );
            }
        }
        let err = decode::<u64>(&bytes[..3]).expect_err("truncated");
        assert!(err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn version_1_still_decodes() {
        let bytes = encode_wire(&7u64).expect("encode");
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode::<u64>(&bytes).expect("decode"), 7);
    }
}
