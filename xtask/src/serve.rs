//! The static file server behind `cargo xtask dev`: it serves the built app (`web/dist`) with the
//! MIME types and headers a service worker and a wasm module need. Everything Matrix happens in
//! the page, so this server only ever sends files.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Component, Path, PathBuf},
    time::Duration,
};

/// How long a connection may stay silent before the server drops it: a stuck browser socket must
/// not keep a thread forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head read; browsers send a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serves `dir` on 127.0.0.1:`port` (0: any free port) until the process is stopped, printing
/// `Hearth is ready: open http://ADDR/` once the socket is listening. `/hearth-config.json` tells
/// the page which relays to federate through by default (`relays`, multiaddrs).
pub(crate) fn serve(dir: &Path, port: u16, relays: &[String]) -> Result<(), String> {
    if !dir.join("index.html").exists() {
        return Err(format!("{} has no index.html: build the app first", dir.display()));
    }
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let config = std::sync::Arc::new(config_json(relays));
    println!("Hearth is ready: open http://{address}/");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let dir = dir.to_path_buf();
        let config = config.clone();
        // One thread per connection: a handful of browser tabs at most.
        std::thread::spawn(move || {
            if let Err(error) = handle_connection(stream, &dir, &config) {
                // Browsers drop connections at will; only say something useful went wrong.
                if error.kind() != std::io::ErrorKind::WouldBlock
                    && error.kind() != std::io::ErrorKind::ConnectionReset
                {
                    eprintln!("xtask serve: {error}");
                }
            }
        });
    }
    Ok(())
}

/// `{"relays": [...]}`, the page's default settings.
fn config_json(relays: &[String]) -> Vec<u8> {
    serde_json::json!({ "relays": relays }).to_string().into_bytes()
}

fn handle_connection(stream: TcpStream, dir: &Path, config: &[u8]) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let Some(head) = read_head(&mut reader)? else { return Ok(()) };
        let mut words = head.lines().next().unwrap_or_default().split_whitespace();
        let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or("/"));
        let keep_alive = !head.to_ascii_lowercase().contains("connection: close");
        let response = if target.split('?').next() == Some("/hearth-config.json") {
            Response { status: "200 OK", content_type: "application/json", body: config.to_vec() }
        } else {
            respond(dir, method, target)
        };
        stream.write_all(&response.head(keep_alive))?;
        if method != "HEAD" {
            stream.write_all(&response.body)?;
        }
        if !keep_alive {
            return Ok(());
        }
    }
}

/// The request line and headers, or `None` when the client closed the connection. Requests
/// with a body are not expected (only GET and HEAD are served); a body would be read as the next
/// request and answered 405.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                continue;
            }
            return Ok(Some(head));
        }
        head.push_str(&line);
        if head.len() > MAX_HEAD_BYTES {
            return Err(std::io::Error::other("request head too large"));
        }
    }
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn head(&self, keep_alive: bool) -> Vec<u8> {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nService-Worker-Allowed: /\r\n\
             X-Content-Type-Options: nosniff\r\nConnection: {connection}\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes()
    }
}

fn respond(dir: &Path, method: &str, target: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return text("405 Method Not Allowed", "only GET and HEAD are served\n");
    }
    let Some(path) = resolve(dir, target) else {
        return text("400 Bad Request", "bad path\n");
    };
    match std::fs::read(&path) {
        Ok(body) => Response { status: "200 OK", content_type: mime_type(&path), body },
        Err(_)
            if target.starts_with("/_matrix/")
                || target.starts_with("/.well-known/matrix/")
                || target.starts_with("/_hearth/") =>
        {
            // Matrix requests reach this server only when no service worker intercepted them.
            Response {
                status: "503 Service Unavailable",
                content_type: "application/json",
                body: br#"{"errcode":"M_UNKNOWN","error":"The homeserver runs in the page: this request did not reach it (no service worker)"}"#.to_vec(),
            }
        }
        Err(_) => text("404 Not Found", "not found\n"),
    }
}

fn text(status: &'static str, body: &str) -> Response {
    Response { status, content_type: "text/plain; charset=utf-8", body: body.as_bytes().to_vec() }
}

/// The file for a request target, never outside `dir`; `/` is `index.html`.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let relative = Path::new(path.trim_start_matches('/'));
    if relative.components().any(|part| !matches!(part, Component::Normal(_))) {
        return None;
    }
    let file = dir.join(relative);
    Some(if path.ends_with('/') || file.is_dir() { file.join("index.html") } else { file })
}

fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|ext| ext.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_inside_the_directory_only() {
        let dir = Path::new("/srv/app");
        assert_eq!(resolve(dir, "/"), Some(PathBuf::from("/srv/app/index.html")));
        assert_eq!(resolve(dir, "/sw.js?v=1"), Some(PathBuf::from("/srv/app/sw.js")));
        assert_eq!(resolve(dir, "/../etc/passwd"), None);
        assert_eq!(resolve(dir, "/assets/../../x"), None);
    }

    #[test]
    fn serves_wasm_and_scripts_with_their_mime_types() {
        assert_eq!(mime_type(Path::new("a/hearth_web_bg.wasm")), "application/wasm");
        assert_eq!(mime_type(Path::new("sw.js")), "text/javascript; charset=utf-8");
    }

    #[test]
    fn serves_the_web_app_manifest_and_icons_with_their_mime_types() {
        assert_eq!(mime_type(Path::new("manifest.webmanifest")), "application/manifest+json");
        assert_eq!(mime_type(Path::new("icons/icon-192.png")), "image/png");
        assert_eq!(mime_type(Path::new("icons/icon.svg")), "image/svg+xml");
    }
}
