//! A small Apache Thrift **TBinaryProtocol** codec (docs/xchat.md §3.1), written for the X Chat
//! emulator: a bounded reader that turns any struct into a tree of [`Value`]s (unknown fields are
//! kept, lengths, element counts and nesting are checked against the input, so hostile bytes
//! cannot make it allocate or recurse without limit), and a [`Writer`] for the few structs the
//! emulator builds. Only what X Chat uses; no schema, no codegen.

/// Field / element type codes of TBinaryProtocol.
pub mod types {
    pub const STOP: u8 = 0;
    pub const BOOL: u8 = 2;
    pub const BYTE: u8 = 3;
    pub const DOUBLE: u8 = 4;
    pub const I16: u8 = 6;
    pub const I32: u8 = 8;
    pub const I64: u8 = 10;
    pub const STRING: u8 = 11;
    pub const STRUCT: u8 = 12;
    pub const MAP: u8 = 13;
    pub const SET: u8 = 14;
    pub const LIST: u8 = 15;
}

use types::{BOOL, BYTE, DOUBLE, I16, I32, I64, LIST, MAP, SET, STOP, STRING, STRUCT};

/// Structs nested deeper than this are refused (X Chat's deepest is about 8).
const MAX_DEPTH: usize = 32;

/// A decoded Thrift value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Byte(i8),
    Double(f64),
    I16(i16),
    I32(i32),
    I64(i64),
    /// `string` and `binary` (the wire does not tell them apart).
    Binary(Vec<u8>),
    Struct(Struct),
    Map {
        key_type: u8,
        value_type: u8,
        entries: Vec<(Value, Value)>,
    },
    /// A list or a set.
    List {
        elem_type: u8,
        items: Vec<Value>,
    },
}

/// A decoded struct (or union: a struct with one field), fields in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct {
    pub fields: Vec<(i16, Value)>,
}

impl Struct {
    /// The first field with this id.
    pub fn get(&self, id: i16) -> Option<&Value> {
        self.fields.iter().find(|(f, _)| *f == id).map(|(_, v)| v)
    }

    /// Field `id` as bytes, if it is a string / binary.
    pub fn binary(&self, id: i16) -> Option<&[u8]> {
        match self.get(id)? {
            Value::Binary(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Field `id` as UTF-8 text, if it is a string holding UTF-8.
    pub fn string(&self, id: i16) -> Option<&str> {
        std::str::from_utf8(self.binary(id)?).ok()
    }

    /// Field `id`, if it is a struct.
    pub fn structure(&self, id: i16) -> Option<&Struct> {
        match self.get(id)? {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// Field `id`'s elements, if it is a list or set.
    pub fn list(&self, id: i16) -> Option<&[Value]> {
        match self.get(id)? {
            Value::List { items, .. } => Some(items),
            _ => None,
        }
    }
}

/// Why bytes are not a Thrift struct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThriftError {
    #[error("the input ends inside a value (at byte {0})")]
    Truncated(usize),
    #[error("unknown Thrift type {kind} at byte {at}")]
    UnknownType { kind: u8, at: usize },
    #[error("negative length or count at byte {0}")]
    Negative(usize),
    #[error("structs nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("{0} bytes follow the end of the struct")]
    Trailing(usize),
}

/// Parses `bytes` as exactly one struct (fields up to its STOP byte, nothing after it).
pub fn parse_struct(bytes: &[u8]) -> Result<Struct, ThriftError> {
    let mut reader = Reader { bytes, at: 0 };
    let parsed = reader.structure(0)?;
    match bytes.len() - reader.at {
        0 => Ok(parsed),
        extra => Err(ThriftError::Trailing(extra)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ThriftError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(ThriftError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ThriftError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ThriftError> {
        Ok(self.array::<1>()?[0])
    }

    fn i16(&mut self) -> Result<i16, ThriftError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, ThriftError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A length or count: non-negative, and at most `remaining / min_size` (every element takes
    /// at least `min_size` bytes), so nothing is allocated for bytes that are not there.
    fn count(&mut self, min_size: usize) -> Result<usize, ThriftError> {
        let at = self.at;
        let n = usize::try_from(self.i32()?).map_err(|_| ThriftError::Negative(at))?;
        let remaining = self.bytes.len() - self.at;
        if n.saturating_mul(min_size.max(1)) > remaining {
            return Err(ThriftError::Truncated(at));
        }
        Ok(n)
    }

    fn structure(&mut self, depth: usize) -> Result<Struct, ThriftError> {
        if depth > MAX_DEPTH {
            return Err(ThriftError::TooDeep);
        }
        let mut fields = Vec::new();
        loop {
            let kind = self.u8()?;
            if kind == STOP {
                return Ok(Struct { fields });
            }
            let id = self.i16()?;
            fields.push((id, self.value(kind, depth)?));
        }
    }

    fn value(&mut self, kind: u8, depth: usize) -> Result<Value, ThriftError> {
        let at = self.at;
        Ok(match kind {
            BOOL => Value::Bool(self.u8()? != 0),
            BYTE => Value::Byte(i8::from_be_bytes(self.array()?)),
            DOUBLE => Value::Double(f64::from_be_bytes(self.array()?)),
            I16 => Value::I16(self.i16()?),
            I32 => Value::I32(self.i32()?),
            I64 => Value::I64(i64::from_be_bytes(self.array()?)),
            STRING => {
                let len = self.count(1)?;
                Value::Binary(self.take(len)?.to_vec())
            }
            STRUCT => Value::Struct(self.structure(depth + 1)?),
            MAP => {
                let key_type = self.u8()?;
                let value_type = self.u8()?;
                let n = self.count(min_size(key_type) + min_size(value_type))?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.value(key_type, depth + 1)?;
                    entries.push((key, self.value(value_type, depth + 1)?));
                }
                Value::Map {
                    key_type,
                    value_type,
                    entries,
                }
            }
            LIST | SET => {
                let elem_type = self.u8()?;
                let n = self.count(min_size(elem_type))?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem_type, depth + 1)?);
                }
                Value::List { elem_type, items }
            }
            other => return Err(ThriftError::UnknownType { kind: other, at }),
        })
    }
}

/// The fewest bytes a value of `kind` takes on the wire.
fn min_size(kind: u8) -> usize {
    match kind {
        BOOL | BYTE | STRUCT => 1,
        I16 => 2,
        I32 | STRING => 4,
        MAP => 6,
        LIST | SET => 5,
        _ => 8,
    }
}

/// Writes a struct field by field, in the order called (X Chat writes ascending ids); `finish`
/// adds the STOP byte.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, kind: u8, id: i16) {
        self.buf.push(kind);
        self.buf.extend_from_slice(&id.to_be_bytes());
    }

    fn len_prefixed(&mut self, bytes: &[u8]) {
        // Thrift lengths are i32; nothing the emulator writes comes near 2 GiB.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// A `string` field.
    pub fn string(&mut self, id: i16, value: &str) -> &mut Self {
        self.binary(id, value.as_bytes())
    }

    /// A `binary` field.
    pub fn binary(&mut self, id: i16, value: &[u8]) -> &mut Self {
        self.header(STRING, id);
        self.len_prefixed(value);
        self
    }

    pub fn bool(&mut self, id: i16, value: bool) -> &mut Self {
        self.header(BOOL, id);
        self.buf.push(u8::from(value));
        self
    }

    pub fn i64(&mut self, id: i16, value: i64) -> &mut Self {
        self.header(I64, id);
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A struct field whose value is `encoded`: a complete struct, STOP byte included (e.g. from
    /// another `Writer` or received bytes already checked with [`parse_struct`]).
    pub fn encoded_struct(&mut self, id: i16, encoded: &[u8]) -> &mut Self {
        self.header(STRUCT, id);
        self.buf.extend_from_slice(encoded);
        self
    }

    /// A `list<struct>` field of complete encoded structs.
    pub fn struct_list(&mut self, id: i16, items: &[Vec<u8>]) -> &mut Self {
        self.header(LIST, id);
        self.buf.push(STRUCT);
        let n = i32::try_from(items.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&n.to_be_bytes());
        for item in items {
            self.buf.extend_from_slice(item);
        }
        self
    }

    /// The struct's bytes, STOP included.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.push(STOP);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn text_message_holder_round_trips() {
        // MessageEntryHolder{1: MessageEntryContents{1: MessageContents{1: "Hello!"}}} — 22 bytes
        // (docs/xchat.md §3.2).
        let contents = Writer::new().string(1, "Hello!").finish();
        let union = Writer::new().encoded_struct(1, &contents).finish();
        let holder = Writer::new().encoded_struct(1, &union).finish();
        assert_eq!(holder.len(), 22);
        let parsed = parse_struct(&holder).unwrap();
        let text = parsed
            .structure(1)
            .and_then(|u| u.structure(1))
            .and_then(|c| c.string(1));
        assert_eq!(text, Some("Hello!"));
    }

    #[test]
    fn every_type_is_read_and_unknown_fields_kept() {
        let mut raw = Writer::new()
            .bool(1, true)
            .i64(2, -5)
            .struct_list(3, &[Writer::new().string(1, "a").finish()])
            .finish();
        raw.pop();
        // i32 field 4, map<string,i16> field 5 with one entry, double field 6, set<byte> 7.
        raw.extend_from_slice(&[I32, 0, 4, 0, 0, 0, 9]);
        raw.extend_from_slice(&[MAP, 0, 5, STRING, I16, 0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 7]);
        raw.extend_from_slice(&[DOUBLE, 0, 6]);
        raw.extend_from_slice(&1.5f64.to_be_bytes());
        raw.extend_from_slice(&[SET, 0, 7, BYTE, 0, 0, 0, 2, 1, 2, STOP]);
        let parsed = parse_struct(&raw).unwrap();
        assert_eq!(parsed.get(1), Some(&Value::Bool(true)));
        assert_eq!(parsed.get(2), Some(&Value::I64(-5)));
        assert_eq!(parsed.list(3).unwrap().len(), 1);
        assert_eq!(parsed.get(4), Some(&Value::I32(9)));
        assert!(matches!(parsed.get(5), Some(Value::Map { entries, .. }) if entries.len() == 1));
        assert_eq!(parsed.get(6), Some(&Value::Double(1.5)));
        assert_eq!(parsed.list(7).unwrap(), &[Value::Byte(1), Value::Byte(2)]);
    }

    #[test]
    fn hostile_input_is_refused_without_panicking() {
        // Truncated string, negative length, huge counts, unknown type, trailing bytes, no STOP.
        for bad in [
            &[STRING, 0, 1, 0, 0, 0, 9, b'a'][..],
            &[STRING, 0, 1, 0xff, 0xff, 0xff, 0xff],
            &[LIST, 0, 1, STRUCT, 0x7f, 0xff, 0xff, 0xff, 0],
            &[MAP, 0, 1, STRING, STRING, 0x10, 0, 0, 0],
            &[99, 0, 1, 0],
            &[STOP, STOP],
            &[BOOL, 0, 1, 1],
            &[],
        ] {
            assert!(parse_struct(bad).is_err(), "{bad:?}");
        }
        // Deep nesting.
        let mut deep = [STRUCT, 0, 1].repeat(100);
        deep.extend(vec![STOP; 101]);
        assert_eq!(parse_struct(&deep), Err(ThriftError::TooDeep));
    }
}
