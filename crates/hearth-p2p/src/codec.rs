//! The federation protocol `/hearth/federation/1`: one HTTP-shaped request and one response per
//! stream, in a small binary framing that needs nothing beyond `futures`' I/O traits (so it
//! builds the same for wasm).
//!
//! Integers are big-endian. A request is the method (u8 length + bytes), the path and query
//! (u16 length + bytes), the headers, then the body: every byte up to the end of the stream.
//! A response is the status (u16), the headers, then the body. Headers are a u16 count, then
//! each name (u16 length + bytes) and value (u32 length + bytes), in order, repeats kept.
//!
//! A message is read up to its size limit plus one byte: a larger one is refused without being
//! buffered further ([`MAX_REQUEST_BYTES`], [`MAX_RESPONSE_BYTES`]).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use libp2p::StreamProtocol;
use libp2p::request_response;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/hearth/federation/1");

/// Largest request, framing included: 8 MiB. A federation transaction holds at most 50 PDUs of
/// 64 KiB and 100 EDUs, about 3.3 MB; the rest is room for media uploads' metadata and slack.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// The largest file that can cross between servers: 50 MiB, hearth-server's default upload
/// limit. A host must not accept larger uploads, or its users' files would reach nobody.
pub const MAX_MEDIA_BYTES: usize = 50 * 1024 * 1024;

/// Largest response, framing included: a media download ([`MAX_MEDIA_BYTES`] in its
/// `multipart/mixed` body, whose headers and boundaries take well under 1 MiB) is the largest
/// federation response; room state and backfill answers of big rooms come next, at a few MiB.
pub const MAX_RESPONSE_BYTES: usize = MAX_MEDIA_BYTES + 1024 * 1024;

/// Reads and writes [`PROTOCOL`] messages as `http` types: a `request_response::Codec` for
/// tools and tests that speak the protocol from a swarm of their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request<Vec<u8>>;
    type Response = Response<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_request(&read_limited(io, MAX_REQUEST_BYTES).await?).map_err(invalid)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_response(&read_limited(io, MAX_RESPONSE_BYTES).await?).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = encode_request(&request).map_err(invalid)?;
        io.write_all(&bytes).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = encode_response(&response).map_err(invalid)?;
        io.write_all(&bytes).await?;
        io.close().await
    }
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

async fn read_limited<T: AsyncRead + Unpin>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    // Through a fixed chunk rather than `read_to_end`: futures' `read_to_end` zeroes the
    // vector's whole spare capacity again after every read that had to wait, which made a
    // 16 MiB response take 8 s and a 50 MiB one over a minute.
    let mut bytes = Vec::new();
    let mut chunk = vec![0; READ_CHUNK];
    loop {
        let read = io.read(&mut chunk).await?;
        if read == 0 {
            return Ok(bytes);
        }
        if bytes.len() + read > limit {
            return Err(invalid(format!("message larger than {limit} bytes")));
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// How much one read of a message takes at most.
const READ_CHUNK: usize = 64 * 1024;

/// Encodes a request; fails on one larger than [`MAX_REQUEST_BYTES`] or a field too long for
/// its length prefix.
pub(crate) fn encode_request(request: &Request<Vec<u8>>) -> Result<Vec<u8>, String> {
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let method = request.method().as_str();
    let mut out = Vec::with_capacity(64 + request.body().len());
    out.push(u8::try_from(method.len()).map_err(|_| "method too long")?);
    out.extend_from_slice(method.as_bytes());
    put_u16(&mut out, target.len(), "path and query")?;
    out.extend_from_slice(target.as_bytes());
    encode_headers(&mut out, request.headers())?;
    out.extend_from_slice(request.body());
    check_size(out, MAX_REQUEST_BYTES)
}

/// Checks, without encoding it, that a request fits [`MAX_REQUEST_BYTES`].
pub(crate) fn check_request_size(request: &Request<Vec<u8>>) -> Result<(), String> {
    let target = request.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let size = 5
        + request.method().as_str().len()
        + target
        + headers_size(request.headers())
        + request.body().len();
    if size > MAX_REQUEST_BYTES {
        return Err(format!("request of {size} bytes is larger than {MAX_REQUEST_BYTES}"));
    }
    Ok(())
}

/// Checks, without encoding it, that a response fits [`MAX_RESPONSE_BYTES`].
pub(crate) fn check_response_size(response: &Response<Vec<u8>>) -> Result<(), String> {
    let size = 4 + headers_size(response.headers()) + response.body().len();
    if size > MAX_RESPONSE_BYTES {
        return Err(format!("response of {size} bytes is larger than {MAX_RESPONSE_BYTES}"));
    }
    Ok(())
}

fn headers_size(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| 6 + name.as_str().len() + value.len()).sum()
}

/// Encodes a response; fails on one larger than [`MAX_RESPONSE_BYTES`].
pub(crate) fn encode_response(response: &Response<Vec<u8>>) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64 + response.body().len());
    out.extend_from_slice(&response.status().as_u16().to_be_bytes());
    encode_headers(&mut out, response.headers())?;
    out.extend_from_slice(response.body());
    check_size(out, MAX_RESPONSE_BYTES)
}

fn check_size(out: Vec<u8>, limit: usize) -> Result<Vec<u8>, String> {
    if out.len() > limit {
        return Err(format!("message of {} bytes is larger than {limit}", out.len()));
    }
    Ok(out)
}

fn put_u16(out: &mut Vec<u8>, len: usize, what: &str) -> Result<(), String> {
    let len = u16::try_from(len).map_err(|_| format!("{what} longer than 65535 bytes"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode_headers(out: &mut Vec<u8>, headers: &HeaderMap) -> Result<(), String> {
    put_u16(out, headers.len(), "header count")?;
    for (name, value) in headers {
        put_u16(out, name.as_str().len(), "header name")?;
        out.extend_from_slice(name.as_str().as_bytes());
        let len = u32::try_from(value.len()).map_err(|_| "header value too long")?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    Ok(())
}

/// Decodes a request; every field is checked (`http`'s own parsers), never trusted.
pub(crate) fn decode_request(bytes: &[u8]) -> Result<Request<Vec<u8>>, String> {
    let mut reader = Reader(bytes);
    let method_len = usize::from(reader.u8()?);
    let method = Method::from_bytes(reader.take(method_len)?).map_err(|e| e.to_string())?;
    let target_len = usize::from(reader.u16()?);
    let target = Uri::try_from(reader.take(target_len)?).map_err(|e| e.to_string())?;
    if target.scheme().is_some() || target.path_and_query().is_none() {
        return Err("the target must be a path and query".to_owned());
    }
    let headers = reader.headers()?;
    let mut request = Request::new(reader.0.to_vec());
    *request.method_mut() = method;
    *request.uri_mut() = target;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Decodes a response.
pub(crate) fn decode_response(bytes: &[u8]) -> Result<Response<Vec<u8>>, String> {
    let mut reader = Reader(bytes);
    let status = StatusCode::from_u16(reader.u16()?).map_err(|e| e.to_string())?;
    let headers = reader.headers()?;
    let mut response = Response::new(reader.0.to_vec());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// A cursor over a message's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if self.0.len() < len {
            return Err("message truncated".to_owned());
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn headers(&mut self) -> Result<HeaderMap, String> {
        let count = self.u16()?;
        let mut headers = HeaderMap::new();
        for _ in 0..count {
            let name_len = usize::from(self.u16()?);
            let name = HeaderName::from_bytes(self.take(name_len)?).map_err(|e| e.to_string())?;
            let value_len = usize::try_from(self.u32()?).map_err(|e| e.to_string())?;
            let value =
                HeaderValue::from_bytes(self.take(value_len)?).map_err(|e| e.to_string())?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_repeated_headers() {
        let request = Request::builder()
            .method("PUT")
            .uri("/_matrix/federation/v1/send/1?a=b")
            .header("authorization", "X-Matrix origin=\"a\"")
            .header("x-two", "1")
            .header("x-two", "2")
            .body(b"{\"pdus\":[]}".to_vec())
            .unwrap();
        let decoded = decode_request(&encode_request(&request).unwrap()).unwrap();
        assert_eq!(decoded.method(), "PUT");
        assert_eq!(decoded.uri(), "/_matrix/federation/v1/send/1?a=b");
        assert_eq!(decoded.headers(), request.headers());
        assert_eq!(decoded.body(), request.body());
    }

    #[test]
    fn responses_round_trip() {
        let response = Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(b"{}".to_vec())
            .unwrap();
        let decoded = decode_response(&encode_response(&response).unwrap()).unwrap();
        assert_eq!(decoded.status(), 404);
        assert_eq!(decoded.headers(), response.headers());
        assert_eq!(decoded.body(), b"{}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let request = Request::get("/x").header("a", "b").body(vec![1, 2]).unwrap();
        let bytes = encode_request(&request).unwrap();
        for len in 0..bytes.len() - 2 {
            assert!(decode_request(&bytes[..len]).is_err(), "truncated at {len}");
        }
        assert!(decode_request(b"\x03GET\x00\x0bhttp://a/b/\x00\x00").is_err());
        assert!(decode_response(b"\x00\x05\x00\x00").is_err(), "status 5");
        let huge = Request::post("/").body(vec![0; MAX_REQUEST_BYTES]).unwrap();
        assert!(encode_request(&huge).is_err());
        assert!(check_request_size(&huge).is_err());
        let fits = Request::post("/").body(vec![0; MAX_REQUEST_BYTES - 10]).unwrap();
        assert_eq!(encode_request(&fits).unwrap().len(), MAX_REQUEST_BYTES);
        assert!(check_request_size(&fits).is_ok());
        let fits = Response::new(vec![0; MAX_RESPONSE_BYTES - 4]);
        assert_eq!(encode_response(&fits).unwrap().len(), MAX_RESPONSE_BYTES);
        assert!(check_response_size(&fits).is_ok());
        let huge = Response::new(vec![0; MAX_RESPONSE_BYTES - 3]);
        assert!(check_response_size(&huge).is_err());
    }

    #[test]
    fn reading_stops_past_the_limit() {
        let bytes = [0u8; 100];
        let read = |limit| futures::executor::block_on(read_limited(&mut &bytes[..], limit));
        assert_eq!(read(100).unwrap().len(), 100);
        assert_eq!(read(99).unwrap_err().kind(), io::ErrorKind::InvalidData);

        // Over several chunks, every byte in order.
        let long: Vec<u8> = (0..3 * READ_CHUNK + 5).map(|i| (i % 251) as u8).collect();
        let read = |limit| futures::executor::block_on(read_limited(&mut &long[..], limit));
        assert_eq!(read(long.len()).unwrap(), long);
        assert_eq!(read(long.len() - 1).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
