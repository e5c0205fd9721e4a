//! A tiny HTTP server on 127.0.0.1 that answers `GET /v1/agent/logs/...`
//! the way a node's agent does, for the tests of the server's log relay
//! before the real agent exists: it serves the bytes of one growing log
//! from the offset asked for, a few bytes at a time, with the cursor
//! headers, and records every request line it was sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the fake answers; the test may change it while it runs.
#[derive(Default)]
pub struct Log {
    /// The log's bytes (one file, number 0).
    pub bytes: Vec<u8>,
    /// When set, every request is answered 404 with this error message.
    pub not_found: Option<String>,
}

pub struct FakeAgent {
    /// `http://127.0.0.1:PORT`, the node's `http_addr`.
    pub addr: String,
    pub log: Arc<Mutex<Log>>,
    /// The request targets seen (`/v1/agent/logs/A/T?type=...`), in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// Most bytes in one answer, small so that reading a log takes several.
pub const CHUNK: usize = 8;

impl FakeAgent {
    pub fn start(bytes: &[u8]) -> FakeAgent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Log {
            bytes: bytes.to_vec(),
            not_found: None,
        }));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (l, s) = (log.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (l, s) = (l.clone(), s.clone());
                std::thread::spawn(move || serve(stream, &l, &s));
            }
        });
        FakeAgent { addr, log, seen }
    }

    pub fn append(&self, bytes: &[u8]) {
        self.log.lock().unwrap().bytes.extend_from_slice(bytes);
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Answers the requests of one connection until the client closes it.
fn serve(stream: TcpStream, log: &Mutex<Log>, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // The headers; a GET has no body.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        seen.lock().unwrap().push(target.clone());
        let answer = answer(&target, &log.lock().unwrap());
        if out.write_all(&answer).is_err() {
            return;
        }
    }
}

fn answer(target: &str, log: &Log) -> Vec<u8> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(message) = &log.not_found {
        let body = format!(r#"{{"code":"not_found","message":"{message}"}}"#);
        return response("404 Not Found", "application/json", &[], body.as_bytes());
    }
    if !path.starts_with("/v1/agent/logs/") {
        let body = r#"{"code":"not_found","message":"no route"}"#;
        return response("404 Not Found", "application/json", &[], body.as_bytes());
    }
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(|v| v.parse::<usize>().unwrap())
    };
    let offset = param("offset").unwrap_or(0).min(log.bytes.len());
    let end = (offset + CHUNK).min(log.bytes.len());
    let headers = [
        ("X-Orch-Log-File", "0".to_owned()),
        ("X-Orch-Log-Offset", end.to_string()),
    ];
    response(
        "200 OK",
        "application/octet-stream",
        &headers,
        &log.bytes[offset..end],
    )
}

fn response(status: &str, content_type: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}
