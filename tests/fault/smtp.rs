//! A real SMTP server on a loopback port (mailin-embedded) that counts every message it accepts
//! by the outbox row in its Message-ID (`<casewarden.outbox.{id}@domain>`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server, SslConfig};

/// What arrived: each outbox row's message in the order accepted, how many times each was, and
/// any message whose Message-ID is not an outbox row's.
#[derive(Debug, Default, Clone)]
pub struct Arrivals {
    pub log: Vec<i64>,
    pub by_outbox_id: BTreeMap<i64, u32>,
    pub unrecognised: Vec<String>,
}

#[derive(Clone, Default)]
struct Recorder {
    arrivals: Arc<Mutex<Arrivals>>,
    data: Option<Vec<u8>>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, _to: &[String]) -> Response {
        self.data = Some(Vec::new());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(d) = self.data.as_mut() {
            d.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        // Counted here, before the 250 reaches the client: a client killed now has delivered.
        if let Some(d) = self.data.take() {
            let text = String::from_utf8_lossy(&d);
            let id = message_id(&text);
            let mut arrivals = self.arrivals.lock().unwrap();
            match id.as_deref().and_then(outbox_id) {
                Some(n) => {
                    arrivals.log.push(n);
                    *arrivals.by_outbox_id.entry(n).or_default() += 1;
                }
                None => arrivals
                    .unrecognised
                    .push(id.unwrap_or_else(|| "(no Message-ID)".into())),
            }
        }
        response::OK
    }
}

fn message_id(data: &str) -> Option<String> {
    data.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_string())
    })
}

/// The outbox row id in `<casewarden.outbox.{id}@domain>`.
fn outbox_id(message_id: &str) -> Option<i64> {
    message_id
        .strip_prefix("<casewarden.outbox.")?
        .split_once('@')?
        .0
        .parse()
        .ok()
}

/// Starts a server on a free loopback port; it runs until the test process ends.
pub fn start() -> (u16, Arc<Mutex<Arrivals>>) {
    let recorder = Recorder::default();
    let arrivals = recorder.arrivals.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut server = Server::new(recorder);
        server
            .with_name("smtp.fault.test")
            .with_num_threads(8)
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        server.serve().unwrap();
    });
    (port, arrivals)
}

#[test]
fn a_message_id_names_its_outbox_row() {
    let data = "From: a@b\r\nMessage-ID: <casewarden.outbox.42@example.org>\r\n\r\nbody\r\n";
    assert_eq!(message_id(data).as_deref().and_then(outbox_id), Some(42));
    assert_eq!(outbox_id("<other.1@example.org>"), None);
}
