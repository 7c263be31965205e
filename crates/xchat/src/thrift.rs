//! The Thrift binary (TBinaryProtocol) structures of X Chat the bridge writes and reads
//! (docs/xchat.md §3.1–§3.5). Hand-written rather than generated: the `thrift` crate needs X's
//! IDL compiled with Apache's compiler, for the handful of structs used here.
//!
//! A struct is `type:u8 ‖ id:i16 BE ‖ value` per field, ended by `00`; a union is a struct with
//! one field. Reading skips fields it does not know and bounds every length and the nesting.

use crate::errors::XChatError;

const T_STOP: u8 = 0;
const T_BOOL: u8 = 2;
const T_BYTE: u8 = 3;
const T_DOUBLE: u8 = 4;
const T_I16: u8 = 6;
const T_I32: u8 = 8;
const T_I64: u8 = 10;
const T_STRING: u8 = 11;
const T_STRUCT: u8 = 12;
const T_MAP: u8 = 13;
const T_SET: u8 = 14;
const T_LIST: u8 = 15;

/// Deepest nesting read (X's structures nest a few levels).
const MAX_DEPTH: usize = 32;

/// Writes fields of one struct, in the order called; [`Writer::end`] closes it.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn header(&mut self, kind: u8, id: i16) {
        self.out.push(kind);
        self.out.extend_from_slice(&id.to_be_bytes());
    }

    pub fn binary(mut self, id: i16, value: &[u8]) -> Self {
        self.header(T_STRING, id);
        // X's structures are far below 2 GiB; a longer value cannot be framed and is cut.
        let len = i32::try_from(value.len()).unwrap_or(i32::MAX);
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out
            .extend_from_slice(&value[..usize::try_from(len).unwrap_or(0)]);
        self
    }

    pub fn string(self, id: i16, value: &str) -> Self {
        self.binary(id, value.as_bytes())
    }

    pub fn bool(mut self, id: i16, value: bool) -> Self {
        self.header(T_BOOL, id);
        self.out.push(u8::from(value));
        self
    }

    pub fn i64(mut self, id: i16, value: i64) -> Self {
        self.header(T_I64, id);
        self.out.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn i32(mut self, id: i16, value: i32) -> Self {
        self.header(T_I32, id);
        self.out.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A list of structs as field `id`.
    pub fn struct_list(mut self, id: i16, items: &[Vec<u8>]) -> Self {
        self.header(T_LIST, id);
        self.out.push(T_STRUCT);
        let count = i32::try_from(items.len()).unwrap_or(i32::MAX);
        self.out.extend_from_slice(&count.to_be_bytes());
        for item in items {
            self.out.extend_from_slice(item);
        }
        self
    }

    /// A nested struct (or union) as field `id`.
    pub fn nested(mut self, id: i16, inner: Vec<u8>) -> Self {
        self.header(T_STRUCT, id);
        self.out.extend_from_slice(&inner);
        self
    }

    /// The struct's bytes, closed.
    pub fn end(mut self) -> Vec<u8> {
        self.out.push(T_STOP);
        self.out
    }
}

/// The plaintext of a text message: `MessageEntryHolder { 1: MessageEntryContents (union)
/// { 1: MessageContents { 1: message_text } } }`.
pub fn text_message(text: &str) -> Vec<u8> {
    let contents = Writer::default().string(1, text).end();
    let entry = Writer::default().nested(1, contents).end();
    Writer::default().nested(1, entry).end()
}

/// `MediaAttachment.type` (X Chat's `MediaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Image,
    Gif,
    Video,
    Audio,
    File,
    Svg,
    Other(i32),
}

impl MediaType {
    pub fn from_i32(n: i32) -> Self {
        match n {
            1 => Self::Image,
            2 => Self::Gif,
            3 => Self::Video,
            4 => Self::Audio,
            5 => Self::File,
            6 => Self::Svg,
            n => Self::Other(n),
        }
    }

    pub fn as_i32(self) -> i32 {
        match self {
            Self::Image => 1,
            Self::Gif => 2,
            Self::Video => 3,
            Self::Audio => 4,
            Self::File => 5,
            Self::Svg => 6,
            Self::Other(n) => n,
        }
    }
}

/// A sealed file a message refers to (`MessageAttachment { 1: MediaAttachment }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaAttachment {
    /// Where X keeps the sealed file (`GET /2/chat/media/{conversation}/{media_hash_key}`).
    pub media_hash_key: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub kind: MediaType,
    /// The file's size before sealing, as X's SDK writes it.
    pub filesize: Option<i64>,
    pub filename: Option<String>,
}

/// The plaintext of a message with `text` (may be empty) and one file: `MessageContents
/// { 1: message_text, 3: [MessageAttachment { 1: MediaAttachment { 1: media_hash_key,
/// 2: dimensions { 1: width, 2: height }, 3: type, 5: filesize_bytes, 6: filename } }] }`.
pub fn attachment_message(text: &str, file: &MediaAttachment) -> Vec<u8> {
    let mut media = Writer::default().string(1, &file.media_hash_key);
    if let (Some(w), Some(h)) = (file.width, file.height) {
        media = media.nested(2, Writer::default().i64(1, w).i64(2, h).end());
    }
    media = media.i32(3, file.kind.as_i32());
    if let Some(size) = file.filesize {
        media = media.i64(5, size);
    }
    if let Some(name) = &file.filename {
        media = media.string(6, name);
    }
    let attachment = Writer::default().nested(1, media.end()).end();
    let contents = Writer::default()
        .string(1, text)
        .struct_list(3, &[attachment])
        .end();
    let entry = Writer::default().nested(1, contents).end();
    Writer::default().nested(1, entry).end()
}

/// The sealed files a message's plaintext refers to (none for other entries and other kinds
/// of attachment: posts, links, cards).
pub fn message_attachments(plaintext: &[u8]) -> Result<Vec<MediaAttachment>, XChatError> {
    let holder = read_struct(plaintext)?;
    let Some(Value::List(items)) = holder
        .field(1)
        .and_then(|entry| entry.field(1))
        .and_then(|contents| contents.field(3))
    else {
        return Ok(Vec::new());
    };
    Ok(items
        .iter()
        .filter_map(|item| item.field(1))
        .filter_map(|media| {
            let media_hash_key = media.field(1)?.as_str()?.to_owned();
            let dims = media.field(2);
            Some(MediaAttachment {
                media_hash_key,
                width: dims.and_then(|d| d.field(1)).and_then(Value::as_int),
                height: dims.and_then(|d| d.field(2)).and_then(Value::as_int),
                kind: MediaType::from_i32(
                    media
                        .field(3)
                        .and_then(Value::as_int)
                        .and_then(|n| i32::try_from(n).ok())
                        .unwrap_or(1),
                ),
                filesize: media.field(5).and_then(Value::as_int),
                filename: media.field(6).and_then(Value::as_str).map(str::to_owned),
            })
        })
        .collect())
}

/// A conversation key wrapped for one participant, as a key change lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub user_id: String,
    /// The 113-byte wrap, standard base64 with padding.
    pub wrapped_b64: String,
    /// The version of the participant's identity key it is wrapped for.
    pub public_key_version: String,
}

/// `MessageEventDetail` variant 3, `ConversationKeyChangeEvent { 1: conversation_key_version,
/// 2: [ConversationParticipantKey { 1: user_id, 2: encrypted_conversation_key,
/// 3: public_key_version }], 5: for_key_rotation = false }` (docs/xchat.md §2.5).
pub fn key_change_detail(key_version: &str, participants: &[WrappedKey]) -> Vec<u8> {
    let items: Vec<Vec<u8>> = participants
        .iter()
        .map(|p| {
            Writer::default()
                .string(1, &p.user_id)
                .string(2, &p.wrapped_b64)
                .string(3, &p.public_key_version)
                .end()
        })
        .collect();
    let change = Writer::default()
        .string(1, key_version)
        .struct_list(2, &items)
        .bool(5, false)
        .end();
    Writer::default().nested(3, change).end()
}

/// `MessageCreateEvent { 100: contents, 101: conversation_key_version, 102: should_notify }`.
pub fn message_create_event(
    sealed_contents: &[u8],
    key_version: &str,
    should_notify: bool,
) -> Vec<u8> {
    Writer::default()
        .binary(100, sealed_contents)
        .string(101, key_version)
        .bool(102, should_notify)
        .end()
}

/// `MessageEventSignature { 1: signature, 2: public_key_version, 3: signature_version }`.
pub fn message_event_signature(
    signature: &str,
    public_key_version: &str,
    signature_version: &str,
) -> Vec<u8> {
    Writer::default()
        .string(1, signature)
        .string(2, public_key_version)
        .string(3, signature_version)
        .end()
}

/// A value read from Thrift binary.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Double(f64),
    Binary(Vec<u8>),
    Struct(Vec<(i16, Value)>),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Field `id` of a struct.
    pub fn field(&self, id: i16) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(f, _)| *f == id).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Reads one struct from `bytes` (the whole input).
pub fn read_struct(bytes: &[u8]) -> Result<Value, XChatError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(T_STRUCT, 0)?;
    if reader.at != bytes.len() {
        return Err(XChatError::Thrift(format!(
            "{} bytes after the struct",
            bytes.len() - reader.at
        )));
    }
    Ok(value)
}

/// The text of a text message's plaintext (see [`text_message`]); `None` for other entries.
pub fn message_text(plaintext: &[u8]) -> Result<Option<String>, XChatError> {
    let holder = read_struct(plaintext)?;
    Ok(holder
        .field(1)
        .and_then(|entry| entry.field(1))
        .and_then(|contents| contents.field(1))
        .and_then(Value::as_str)
        .map(str::to_owned))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], XChatError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| XChatError::Thrift(format!("truncated at byte {}", self.at)))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, XChatError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], XChatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A length or count: non-negative, and no more than the bytes left (each element takes at
    /// least one byte), so a forged count cannot make the reader allocate.
    fn count(&mut self) -> Result<usize, XChatError> {
        let n = i32::from_be_bytes(self.be()?);
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len() - self.at)
            .ok_or_else(|| XChatError::Thrift(format!("bad length {n} at byte {}", self.at)))
    }

    fn value(&mut self, kind: u8, depth: usize) -> Result<Value, XChatError> {
        if depth > MAX_DEPTH {
            return Err(XChatError::Thrift("nested too deep".into()));
        }
        Ok(match kind {
            T_BOOL => Value::Bool(self.u8()? != 0),
            T_BYTE => Value::Int(i64::from(i8::from_be_bytes(self.be()?))),
            T_I16 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            T_I32 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            T_I64 => Value::Int(i64::from_be_bytes(self.be()?)),
            T_DOUBLE => Value::Double(f64::from_be_bytes(self.be()?)),
            T_STRING => {
                let n = self.count()?;
                Value::Binary(self.take(n)?.to_vec())
            }
            T_STRUCT => {
                let mut fields = Vec::new();
                loop {
                    let kind = self.u8()?;
                    if kind == T_STOP {
                        break;
                    }
                    let id = i16::from_be_bytes(self.be()?);
                    fields.push((id, self.value(kind, depth + 1)?));
                }
                Value::Struct(fields)
            }
            T_LIST | T_SET => {
                let elem = self.u8()?;
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::List(items)
            }
            T_MAP => {
                let (k, v) = (self.u8()?, self.u8()?);
                let n = self.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push((self.value(k, depth + 1)?, self.value(v, depth + 1)?));
                }
                Value::Map(entries)
            }
            other => return Err(XChatError::Thrift(format!("unknown type {other}"))),
        })
    }
}
