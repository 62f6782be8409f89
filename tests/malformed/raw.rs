//! A minimal AMQP 0-9-1 publisher written for the tests: it can send bytes
//! no real client would (content headers built by hand, routing keys that
//! are not UTF-8). Handshake with PLAIN, one channel in confirm mode,
//! `basic.publish` awaiting the broker's ack. Blocking I/O: call it from
//! `tokio::task::block_in_place` in an async test.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use lapin::uri::AMQPUri;

const FRAME_END: u8 = 0xCE;

/// A frame read from the broker.
struct Frame {
    kind: u8,
    channel: u16,
    payload: Vec<u8>,
}

impl Frame {
    fn method(&self) -> Option<(u16, u16)> {
        (self.kind == 1 && self.payload.len() >= 4).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                u16::from_be_bytes([self.payload[2], self.payload[3]]),
            )
        })
    }

    /// The reply text of a `channel.close` or `connection.close`.
    fn reply_text(&self) -> String {
        let p = &self.payload;
        let code = p
            .get(4..6)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .unwrap_or_default();
        let n = p.get(6).copied().unwrap_or_default() as usize;
        let text = p.get(7..7 + n).unwrap_or_default();
        format!("{code} {}", String::from_utf8_lossy(text))
    }
}

fn open(uri: &AMQPUri) -> io::Result<TcpStream> {
    let stream = TcpStream::connect((uri.authority.host.as_str(), uri.authority.port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(stream)
}

fn short(v: &mut Vec<u8>, s: &[u8]) {
    v.push(s.len() as u8);
    v.extend_from_slice(s);
}

fn method(class: u16, id: u16, args: &[u8]) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(args);
    p
}

/// A raw publisher on one connection.
pub struct RawPublisher {
    uri: AMQPUri,
    stream: TcpStream,
    channel: u16,
    frame_max: u32,
}

impl RawPublisher {
    /// Connects to the broker at `url` (plain `amqp://` only).
    pub fn connect(url: &str) -> io::Result<RawPublisher> {
        let uri: AMQPUri = url.parse().map_err(io::Error::other)?;
        let stream = open(&uri)?;
        let mut raw = RawPublisher {
            uri,
            stream,
            channel: 0,
            frame_max: 131_072,
        };
        raw.handshake()?;
        Ok(raw)
    }

    fn handshake(&mut self) -> io::Result<()> {
        self.stream.write_all(b"AMQP\x00\x00\x09\x01")?;
        self.expect(0, (10, 10))?; // connection.start
        let user = &self.uri.authority.userinfo;
        let mut args = vec![0, 0, 0, 0]; // client properties: none
        short(&mut args, b"PLAIN");
        let response = format!("\0{}\0{}", user.username, user.password);
        args.extend_from_slice(&(response.len() as u32).to_be_bytes());
        args.extend_from_slice(response.as_bytes());
        short(&mut args, b"en_US");
        self.send(1, 0, &method(10, 11, &args))?;
        let tune = self.expect(0, (10, 30))?;
        let channel_max = [tune.payload[4], tune.payload[5]];
        let frame_max = [tune.payload[6], tune.payload[7], tune.payload[8], tune.payload[9]];
        self.frame_max = u32::from_be_bytes(frame_max);
        let mut args = channel_max.to_vec();
        args.extend_from_slice(&frame_max);
        args.extend_from_slice(&0u16.to_be_bytes()); // no heartbeats
        self.send(1, 0, &method(10, 31, &args))?;
        let mut args = Vec::new();
        short(&mut args, self.uri.vhost.as_bytes());
        short(&mut args, b"");
        args.push(0);
        self.send(1, 0, &method(10, 40, &args))?;
        self.expect(0, (10, 41))?;
        self.open_channel()
    }

    fn open_channel(&mut self) -> io::Result<()> {
        self.channel += 1;
        let channel = self.channel;
        self.send(1, channel, &method(20, 10, &[0]))?;
        self.expect(channel, (20, 11))?;
        self.send(1, channel, &method(85, 10, &[0]))?; // confirm.select
        self.expect(channel, (85, 11))?;
        Ok(())
    }

    fn send(&mut self, kind: u8, channel: u16, payload: &[u8]) -> io::Result<()> {
        let mut f = vec![kind];
        f.extend_from_slice(&channel.to_be_bytes());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f.push(FRAME_END);
        self.stream.write_all(&f)
    }

    fn read(&mut self) -> io::Result<Frame> {
        let mut head = [0u8; 7];
        self.stream.read_exact(&mut head)?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut payload = vec![0; size + 1];
        self.stream.read_exact(&mut payload)?;
        if payload.pop() != Some(FRAME_END) {
            return Err(io::Error::other("frame without its end byte"));
        }
        Ok(Frame {
            kind: head[0],
            channel: u16::from_be_bytes([head[1], head[2]]),
            payload,
        })
    }

    fn expect(&mut self, channel: u16, want: (u16, u16)) -> io::Result<Frame> {
        loop {
            let frame = self.read()?;
            match frame.method() {
                Some(m) if m == want && frame.channel == channel => return Ok(frame),
                Some((10, 50)) | Some((20, 40)) => {
                    return Err(io::Error::other(format!(
                        "the broker closed: {}",
                        frame.reply_text()
                    )))
                }
                _ => {}
            }
        }
    }

    /// Publishes one message: `properties` is everything of the content
    /// header after the body size (the flag word and the properties), sent
    /// as it is. `Ok(Err(reason))` when the broker refused it (the channel
    /// is then reopened).
    pub fn publish(
        &mut self,
        exchange: &str,
        routing_key: &[u8],
        properties: &[u8],
        body: &[u8],
    ) -> io::Result<Result<(), String>> {
        let channel = self.channel;
        let mut args = vec![0, 0];
        short(&mut args, exchange.as_bytes());
        short(&mut args, routing_key);
        args.push(0);
        self.send(1, channel, &method(60, 40, &args))?;
        let mut header = 60u16.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0]);
        header.extend_from_slice(&(body.len() as u64).to_be_bytes());
        header.extend_from_slice(properties);
        self.send(2, channel, &header)?;
        for part in body.chunks(self.frame_max as usize - 8) {
            self.send(3, channel, part)?;
        }
        loop {
            let frame = self.read()?;
            match frame.method() {
                Some((60, 80)) => return Ok(Ok(())),
                Some((60, 120)) => return Ok(Err("nacked".to_owned())),
                Some((20, 40)) => {
                    let reason = frame.reply_text();
                    self.send(1, frame.channel, &method(20, 41, &[]))?;
                    self.open_channel()?;
                    return Ok(Err(reason));
                }
                Some((10, 50)) => {
                    let reason = frame.reply_text();
                    let _ = self.send(1, 0, &method(10, 51, &[]));
                    let url = self.uri.clone();
                    self.stream = open(&url)?;
                    self.channel = 0;
                    self.handshake()?;
                    return Ok(Err(reason));
                }
                _ => {}
            }
        }
    }
}
