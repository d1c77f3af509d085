//! The `multipart/mixed` bodies of the federation media endpoints
//! ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1mediadownloadmediaid)):
//! a JSON metadata part (`{}` today), then the file with its `Content-Type` and
//! `Content-Disposition` (or a `Location` to fetch it from instead).
//!
//! Written and parsed here rather than with ruma's `authenticated_media` helpers: ruma 0.17's
//! parser panics on a body whose first part holds no line break (`--b` right after `--b`), so a
//! hostile peer could stop a browser tab's server, and its writer ends without the close
//! delimiter (`--boundary--`) that RFC 2046 requires. The parser still accepts what ruma writes
//! (Conduit and its successors), close delimiter or not.

use hearth_core::ruma::http_headers::ContentDisposition;
use http::HeaderValue;

use crate::{auth::random_token, error::Result};

/// At most this many header lines per part.
const MAX_PART_HEADERS: usize = 32;
/// A part's header block is at most this long.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// What a body may carry beyond the file itself (boundaries, headers, metadata).
const MAX_OVERHEAD_BYTES: usize = 64 * 1024;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// A file as a peer sent it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) file: Vec<u8>,
    /// The part's `Content-Type`, when it is one we could send on as a header.
    pub(crate) content_type: Option<String>,
    /// The file name in the part's `Content-Disposition`, if any.
    pub(crate) filename: Option<String>,
}

/// Why a peer's body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// The file, or the body around it, is larger than this server accepts.
    #[error("the file is larger than the {0} bytes this server accepts")]
    TooLarge(u64),
    /// The file is elsewhere (a `Location` part): peers have no URLs we could fetch.
    #[error("the answer is a redirect (Location), which Hearth does not follow")]
    Redirect,
    /// Not a `multipart/mixed` body of two parts.
    #[error("malformed multipart/mixed body: {0}")]
    Malformed(&'static str),
}

/// A `multipart/mixed` body carrying `file`: its `Content-Type` header value and its bytes.
pub(crate) fn write(
    content_type: &str,
    disposition: &ContentDisposition,
    file: &[u8],
) -> Result<(HeaderValue, Vec<u8>)> {
    // A random boundary, drawn again in the (never seen) case that the file contains it.
    let mut boundary = random_token(24)?;
    while contains(file, format!("--{boundary}").as_bytes()) {
        boundary = random_token(24)?;
    }
    let header = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}"))
        .map_err(|error| crate::ServerError::Internal(error.to_string()))?;
    // Both values were header values already; a line break would end the part's headers.
    let clean = |value: String| (!value.chars().any(char::is_control)).then_some(value);
    let content_type =
        clean(content_type.to_owned()).unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut body = Vec::with_capacity(file.len() + 256);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(b"Content-Type: application/json\r\n\r\n{}");
    body.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    if let Some(disposition) = clean(disposition.to_string()) {
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((header, body))
}

/// Reads a peer's `multipart/mixed` body: `content_type` is the response's `Content-Type`, and
/// files over `max_file` bytes are refused. Never panics, whatever the bytes.
pub(crate) fn parse(
    content_type: Option<&HeaderValue>,
    body: &[u8],
    max_file: u64,
) -> Result<Received, Refused> {
    let max_body =
        usize::try_from(max_file).unwrap_or(usize::MAX).saturating_add(MAX_OVERHEAD_BYTES);
    if body.len() > max_body {
        return Err(Refused::TooLarge(max_file));
    }
    let boundary = boundary(content_type)?;
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut parts = Parts::new(body, &delimiter)?;
    let (_, metadata) = split_part(parts.next_part()?.ok_or(Refused::Malformed("no parts"))?)?;
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(metadata.trim_ascii())
        .is_err()
    {
        return Err(Refused::Malformed("the metadata part is not a JSON object"));
    }
    let (headers, file) =
        split_part(parts.next_part()?.ok_or(Refused::Malformed("no file part"))?)?;
    let mut content_type = None;
    let mut filename = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("location") {
            return Err(Refused::Redirect);
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = (value.len() <= 255 && HeaderValue::from_str(value).is_ok())
                .then(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("content-disposition") {
            // A disposition we cannot read costs only the file name.
            filename = ContentDisposition::try_from(value.as_bytes())
                .ok()
                .and_then(|disposition| disposition.filename);
        }
    }
    if file.len() as u64 > max_file {
        return Err(Refused::TooLarge(max_file));
    }
    Ok(Received { file: file.to_vec(), content_type, filename })
}

/// The `boundary` parameter of a `multipart/mixed` content type.
fn boundary(content_type: Option<&HeaderValue>) -> Result<String, Refused> {
    let value = content_type
        .and_then(|value| value.to_str().ok())
        .ok_or(Refused::Malformed("no readable Content-Type"))?;
    let mut params = value.split(';');
    let essence = params.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/mixed") {
        return Err(Refused::Malformed("the Content-Type is not multipart/mixed"));
    }
    let boundary = params
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| {
            let value = value.trim();
            value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
        })
        .ok_or(Refused::Malformed("no boundary"))?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(Refused::Malformed("the boundary is empty or longer than 70 characters"));
    }
    Ok(boundary.to_owned())
}

/// The parts of a body, one after the other.
struct Parts<'a> {
    body: &'a [u8],
    /// `CRLF--boundary`: what ends a part.
    end: Vec<u8>,
    /// Just past the delimiter that opens the next part.
    position: usize,
}

impl<'a> Parts<'a> {
    fn new(body: &'a [u8], delimiter: &[u8]) -> Result<Parts<'a>, Refused> {
        let end = [b"\r\n", delimiter].concat();
        // The first delimiter opens the body, or follows a preamble and a line break.
        let position = if body.starts_with(delimiter) {
            delimiter.len()
        } else {
            find(body, &end, 0).ok_or(Refused::Malformed("no boundary in the body"))? + end.len()
        };
        Ok(Parts { body, end, position })
    }

    /// The next part's bytes (headers and content), or `None` after the close delimiter.
    fn next_part(&mut self) -> Result<Option<&'a [u8]>, Refused> {
        let rest = &self.body[self.position..];
        if rest.starts_with(b"--") {
            return Ok(None);
        }
        // Transport padding, then the line break that ends the delimiter line.
        let padding = rest.iter().take_while(|byte| matches!(byte, b' ' | b'\t')).count();
        let start = match &rest[padding..] {
            [b'\r', b'\n', ..] => self.position + padding + 2,
            [b'\n', ..] => self.position + padding + 1,
            [] => return Ok(None),
            _ => return Err(Refused::Malformed("text after a boundary")),
        };
        let end =
            find(self.body, &self.end, start).ok_or(Refused::Malformed("unterminated part"))?;
        self.position = end + self.end.len();
        Ok(Some(&self.body[start..end]))
    }
}

/// A part's header lines: `name`, `value`.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// A part's headers and its content.
fn split_part(part: &[u8]) -> Result<(Headers<'_>, &[u8]), Refused> {
    let mut headers = Vec::new();
    let mut line_start = 0;
    loop {
        let Some(newline) = part[line_start..].iter().position(|&byte| byte == b'\n') else {
            return Err(Refused::Malformed("a part without an empty line after its headers"));
        };
        let line_end = line_start + newline;
        let line =
            part[line_start..line_end].strip_suffix(b"\r").unwrap_or(&part[line_start..line_end]);
        line_start = line_end + 1;
        if line.is_empty() {
            return Ok((headers, &part[line_start..]));
        }
        if headers.len() == MAX_PART_HEADERS || line_start > MAX_HEADER_BYTES {
            return Err(Refused::Malformed("too many part headers"));
        }
        let line =
            std::str::from_utf8(line).map_err(|_| Refused::Malformed("a header is not UTF-8"))?;
        let (name, value) =
            line.split_once(':').ok_or(Refused::Malformed("a header line without a colon"))?;
        headers.push((name.trim(), value.trim()));
    }
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let skip = haystack[at..].iter().position(|&byte| byte == first)?;
        at += skip;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle, 0).is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use hearth_core::ruma::{
        api::{IncomingResponseExt, federation::authenticated_media},
        http_headers::ContentDispositionType,
    };

    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    fn parse_str(body: &str) -> Result<Received, Refused> {
        parse(Some(&header("multipart/mixed; boundary=b")), body.as_bytes(), 100)
    }

    #[test]
    fn what_we_write_we_and_ruma_read() {
        let file = b"\x00\xffbinary\r\n--not-the-boundary\r\n".to_vec();
        let disposition = ContentDisposition::new(ContentDispositionType::Inline)
            .with_filename(Some("caf\u{e9}.png".into()));
        let (content_type, body) = write("image/png", &disposition, &file).unwrap();
        assert!(body.ends_with(b"--\r\n"), "the close delimiter ends the body");

        let received = parse(Some(&content_type), &body, 1000).unwrap();
        assert_eq!(received.file, file);
        assert_eq!(received.content_type.as_deref(), Some("image/png"));
        assert_eq!(received.filename.as_deref(), Some("caf\u{e9}.png"));

        let response = http::Response::builder()
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body.as_slice())
            .unwrap();
        let parsed =
            authenticated_media::get_content::v1::Response::try_from_http_response(response)
                .unwrap();
        let authenticated_media::FileOrLocation::File(content) = parsed.content else {
            panic!("a file")
        };
        assert_eq!(content.file, file);
    }

    #[test]
    fn reads_what_others_write() {
        // ruma's writer: no close delimiter.
        let ruma = "\r\n--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: \
                    text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nhi\r\n--b";
        let received = parse_str(ruma).unwrap();
        assert_eq!(received.file, b"hi");
        assert_eq!(received.content_type.as_deref(), Some("text/plain"));
        assert_eq!(received.filename.as_deref(), Some("a.txt"));
        // A preamble, bare line feeds in headers, padding, a quoted boundary, an empty file,
        // no headers on the file part.
        let body = "preamble\r\n--b  \nCONTENT-TYPE: application/json\n\n {\"x\": 1} \r\n--b\r\n\r\n\r\n--b--";
        let quoted =
            parse(Some(&header("Multipart/Mixed; charset=x; boundary=\"b\"")), body.as_bytes(), 10);
        assert_eq!(
            quoted.unwrap(),
            Received { file: Vec::new(), content_type: None, filename: None }
        );
    }

    #[test]
    fn refuses_bad_bodies_without_panicking() {
        let malformed = [
            "",
            "--b",
            "--b--",
            "--b\r\n--b\r\n--b",
            "\r\n--b\r\n--b",
            "--b\r\n\r\n{}\r\n--b",
            "--b\r\n\r\n{}",
            "--bx\r\n\r\n{}\r\n--b\r\n\r\nfile\r\n--b--",
            "--b\r\n\r\nnot json\r\n--b\r\n\r\nfile\r\n--b--",
            "--b\r\n\r\n[]\r\n--b\r\n\r\nfile\r\n--b--",
            "--b\r\nno colon\r\n\r\n{}\r\n--b\r\n\r\nfile\r\n--b--",
            "--b\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\nfile without a blank line\r\n--b--",
            "--b garbage\r\n\r\n{}\r\n--b\r\n\r\nfile\r\n--b--",
        ];
        for body in malformed {
            assert!(matches!(parse_str(body), Err(Refused::Malformed(_))), "{body:?}");
        }
        let redirect = "--b\r\n\r\n{}\r\n--b\r\nLocation: https://x/y\r\n\r\n\r\n--b--";
        assert_eq!(parse_str(redirect), Err(Refused::Redirect));
        let large = format!("--b\r\n\r\n{{}}\r\n--b\r\n\r\n{}\r\n--b--", "x".repeat(101));
        assert_eq!(parse_str(&large), Err(Refused::TooLarge(100)));
        let huge = vec![b'x'; 100 + MAX_OVERHEAD_BYTES + 1];
        assert_eq!(
            parse(Some(&header("multipart/mixed; boundary=b")), &huge, 100),
            Err(Refused::TooLarge(100))
        );
        let many_headers =
            format!("--b\r\n{}\r\n{{}}\r\n--b\r\n\r\nf\r\n--b--", "A: b\r\n".repeat(40));
        assert!(matches!(parse_str(&many_headers), Err(Refused::Malformed(_))));
        let ok = "--b\r\n\r\n{}\r\n--b\r\n\r\nfile\r\n--b--".as_bytes();
        for content_type in [
            None,
            Some("application/json"),
            Some("multipart/mixed"),
            Some("multipart/mixed; boundary="),
            Some(&*format!("multipart/mixed; boundary={}", "b".repeat(71))),
        ] {
            let value = content_type.map(header);
            assert!(
                matches!(parse(value.as_ref(), ok, 100), Err(Refused::Malformed(_))),
                "{content_type:?}"
            );
        }
        assert_eq!(parse_str("--b\r\n\r\n{}\r\n--b\r\n\r\nfile\r\n--b--").unwrap().file, b"file");
    }
}
