//! Versioned encoding of everything the store persists or sends to peers.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// The only format version so far: MessagePack with named fields.
pub const FORMAT_V1: u8 = 1;

/// `[FORMAT_V1] ++ MessagePack(value)`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V1];
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes what `encode` wrote, refusing unknown format versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => {
            rmp_serde::from_slice(body).map_err(|e| StoreError::Decode(e.to_string()))
        }
        Some((v, _)) => Err(StoreError::Decode(format!("unknown format version {v}"))),
        None => Err(StoreError::Decode("empty value".into())),
    }
}
