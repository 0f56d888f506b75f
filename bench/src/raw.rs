//! Row (a), `raw`: the limit. Blocking `std::os::unix::net::UnixStream`s, no runtime and
//! no JSON parsing.
//!
//! The server reads a 4-byte little-endian length and the body, and answers with a
//! precomputed ACKNOWLEDGMENT frame into which it copies the request id at fixed offsets
//! (the ack's id, with its first letter changed to `a`, and `correlationId`): every
//! request id has the same length and position, so this is two `memcpy`s, not parsing.
//! Acks are written once no further complete request is buffered, so pipelined requests
//! are answered with one `write` per batch; a round trip is one `read` and one `write` on
//! each side.
//!
//! Client and server are separate processes, so the socket is bound to a path rather
//! than created with `socketpair(2)`; once connected it is the same kernel object, a
//! connected pair of `AF_UNIX` stream sockets.

use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::measure::{ClientReport, Tally};
use crate::wire::{self, ID_LEN, ID_OFFSET};
use crate::{ClientOptions, Mode};

/// The ack the raw server sends, with a placeholder id; the id is patched in per request.
fn ack_template() -> Vec<u8> {
    let ack = wire::AckEnvelope {
        id: wire::ack_id(0),
        message_type: "ACKNOWLEDGMENT".to_owned(),
        timestamp: "2026-11-25T10:00:00.000000000Z".to_owned(),
        payload: wire::AckPayload { success: true },
        correlation_id: wire::request_id(0),
    };
    serde_json::to_vec(&ack).unwrap_or_default()
}

/// Where the ack id and the correlation id sit in [`ack_template`].
fn ack_offsets(template: &[u8]) -> anyhow::Result<(usize, usize)> {
    let find = |needle: &[u8]| {
        template
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|at| at + needle.len())
    };
    let id = find(br#"{"id":""#).context("ack template has no id")?;
    let correlation = find(br#""correlationId":""#).context("ack template has no correlationId")?;
    Ok((id, correlation))
}

/// Serves every connection on its own thread until killed.
pub fn serve(socket: &Path) -> anyhow::Result<()> {
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    crate::announce(socket);
    let template = ack_template();
    let offsets = ack_offsets(&template)?;
    for stream in listener.incoming() {
        let stream = stream.context("accepting")?;
        let template = template.clone();
        std::thread::spawn(move || {
            if let Err(error) = serve_connection(stream, &template, offsets) {
                eprintln!("raw server: connection: {error:#}");
            }
        });
    }
    Ok(())
}

fn serve_connection(
    stream: UnixStream,
    template: &[u8],
    (id_at, correlation_at): (usize, usize),
) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut ack = wire::frame(template)?;
    let (id_at, correlation_at) = (id_at + 4, correlation_at + 4);
    let mut body = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        if !(ID_OFFSET + ID_LEN..=wire::MAX_FRAME).contains(&len) {
            bail!("bad frame length {len}");
        }
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
        let id = &body[ID_OFFSET..ID_OFFSET + ID_LEN];
        ack[id_at..id_at + ID_LEN].copy_from_slice(id);
        ack[id_at] = b'a';
        ack[correlation_at..correlation_at + ID_LEN].copy_from_slice(id);
        out.extend_from_slice(&ack);
        if !complete_frame_buffered(reader.buffer()) {
            writer.write_all(&out)?;
            out.clear();
        }
    }
}

/// Whether `buffered` holds a whole frame.
fn complete_frame_buffered(buffered: &[u8]) -> bool {
    match buffered.get(..4) {
        Some(len) => {
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            buffered.len() >= 4 + len
        }
        None => false,
    }
}

/// The correlation id of a raw ack body, by position.
fn correlation_of(body: &[u8], correlation_at: usize) -> Option<&str> {
    body.get(correlation_at..correlation_at + ID_LEN)
        .and_then(|id| std::str::from_utf8(id).ok())
}

fn read_frame(reader: &mut impl Read, body: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).context("reading an ack")?;
    let len = u32::from_le_bytes(len) as usize;
    if len > wire::MAX_FRAME {
        bail!("ack of {len} bytes");
    }
    body.resize(len, 0);
    reader.read_exact(body).context("reading an ack")?;
    Ok(())
}

/// Runs the client; see [`crate::ClientOptions`].
pub fn client(options: &ClientOptions) -> anyhow::Result<ClientReport> {
    let stream = UnixStream::connect(&options.socket)
        .with_context(|| format!("connecting to {}", options.socket.display()))?;
    let template = ack_template();
    let (_, correlation_at) = ack_offsets(&template)?;
    let mut frame = wire::frame(&wire::request_body(0, &options.user))?;
    let id_at = 4 + ID_OFFSET;
    let set_id = move |frame: &mut Vec<u8>, n: u64| {
        frame[id_at..id_at + ID_LEN].copy_from_slice(wire::request_id(n).as_bytes());
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut body = Vec::with_capacity(1024);

    for n in 0..options.warmup {
        set_id(&mut frame, n);
        writer.write_all(&frame)?;
        read_frame(&mut reader, &mut body)?;
    }

    let first = options.warmup;
    let mut tally = Tally::new(first, options.count);
    match options.mode {
        Mode::Rtt => {
            let mut samples = Vec::with_capacity(options.count as usize);
            for n in first..first + options.count {
                set_id(&mut frame, n);
                let start = Instant::now();
                writer.write_all(&frame)?;
                read_frame(&mut reader, &mut body)?;
                samples.push(start.elapsed());
                let correlation = correlation_of(&body, correlation_at);
                let matches = correlation == Some(wire::request_id(n).as_str());
                tally.record(correlation, matches);
            }
            Ok(ClientReport::rtt("raw", options.warmup, &samples, &tally))
        }
        Mode::Throughput => {
            let count = options.count;
            let start = Instant::now();
            let writer_thread = std::thread::spawn(move || -> std::io::Result<()> {
                let mut writer = BufWriter::new(writer);
                for n in first..first + count {
                    set_id(&mut frame, n);
                    writer.write_all(&frame)?;
                }
                writer.flush()
            });
            for _ in 0..count {
                read_frame(&mut reader, &mut body)?;
                tally.record(correlation_of(&body, correlation_at), true);
            }
            let elapsed = start.elapsed();
            writer_thread
                .join()
                .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?
                .context("writing requests")?;
            Ok(ClientReport::throughput(
                "raw",
                options.warmup,
                count,
                elapsed,
                &tally,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_template_offsets_point_at_the_ids() {
        let template = ack_template();
        let (id, correlation) = ack_offsets(&template).unwrap();
        assert_eq!(&template[id..id + ID_LEN], b"a-000000000000");
        assert_eq!(
            &template[correlation..correlation + ID_LEN],
            b"b-000000000000"
        );
    }

    #[test]
    fn buffered_frames_are_recognised() {
        assert!(!complete_frame_buffered(&[]));
        assert!(!complete_frame_buffered(&[3, 0, 0, 0, 1, 2]));
        assert!(complete_frame_buffered(&[2, 0, 0, 0, 1, 2]));
    }
}
