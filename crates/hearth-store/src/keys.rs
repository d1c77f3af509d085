//! Composite keys that sort the way the data model scans them.
//!
//! A string component is its UTF-8 bytes with `0x00` escaped as `0x00 0xFF`, then the terminator
//! `0x00 0x01`; a number is 8 big-endian bytes. So keys compare component by component, a prefix
//! of whole components selects exactly the keys that start with them (`@a:x` never matches
//! `@a:xy`), and numbers sort numerically.

use crate::StoreError;

const ESCAPE: u8 = 0x00;
const ESCAPED_NUL: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// Builds a key from components.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    pub(crate) fn new() -> Self {
        Key(Vec::with_capacity(64))
    }

    pub(crate) fn str(mut self, component: &str) -> Self {
        for &byte in component.as_bytes() {
            self.0.push(byte);
            if byte == ESCAPE {
                self.0.push(ESCAPED_NUL);
            }
        }
        self.0.extend([ESCAPE, TERMINATOR]);
        self
    }

    pub(crate) fn u64(mut self, component: u64) -> Self {
        self.0.extend(component.to_be_bytes());
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.0
    }
}

/// Reads components back out of a key, in the order they were written.
pub(crate) struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    pub(crate) fn new(key: &'a [u8]) -> Self {
        KeyReader { rest: key }
    }

    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        let mut bytes = Vec::new();
        let mut index = 0;
        loop {
            match self.rest.get(index) {
                None => return Err(StoreError::corrupt("key string without terminator")),
                Some(&ESCAPE) => match self.rest.get(index + 1) {
                    Some(&ESCAPED_NUL) => {
                        bytes.push(ESCAPE);
                        index += 2;
                    }
                    Some(&TERMINATOR) => {
                        self.rest = &self.rest[index + 2..];
                        break;
                    }
                    _ => return Err(StoreError::corrupt("bad escape in key string")),
                },
                Some(&byte) => {
                    bytes.push(byte);
                    index += 1;
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| StoreError::corrupt("key string is not UTF-8"))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        let (number, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or_else(|| StoreError::corrupt("key number shorter than 8 bytes"))?;
        self.rest = rest;
        Ok(u64::from_be_bytes(*number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_round_trip() {
        let key = Key::new().str("@a\0b:x").u64(42).str("").build();
        let mut reader = KeyReader::new(&key);
        assert_eq!(reader.str().unwrap(), "@a\0b:x");
        assert_eq!(reader.u64().unwrap(), 42);
        assert_eq!(reader.str().unwrap(), "");
    }

    #[test]
    fn keys_sort_component_by_component() {
        let a = Key::new().str("@a:x").u64(2).build();
        let b = Key::new().str("@a:x").u64(10).build();
        let c = Key::new().str("@a:xy").u64(1).build();
        let d = Key::new().str("@a:x\0").u64(1).build();
        assert!(a < b && b < c);
        assert!(b < d, "an escaped NUL sorts after the end of the string");
        let prefix = Key::new().str("@a:x").build();
        assert!(a.starts_with(&prefix) && !c.starts_with(&prefix) && !d.starts_with(&prefix));
    }

    #[test]
    fn truncated_keys_are_errors() {
        assert!(KeyReader::new(b"abc").str().is_err());
        assert!(KeyReader::new(&[0, 1, 2]).u64().is_err());
        assert!(KeyReader::new(&[b'a', 0, 7]).str().is_err());
    }
}
