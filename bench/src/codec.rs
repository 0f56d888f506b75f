//! Row (b), `tokio-codec`: what one writes by hand with tokio,
//! `tokio_util::codec::LengthDelimitedCodec` (little-endian `u32` length, 1 MiB limit)
//! and `serde_json`.
//!
//! The server decodes each frame into the hand-written [`RequestEnvelope`], checks its
//! type, builds an [`AckEnvelope`] stamped with the current time and sends it with
//! `Framed::send` (one write per ack). The client serializes each request from the
//! hand-written struct and deserializes each ack into [`AckEnvelope`].

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::measure::{ClientReport, Tally};
use crate::wire::{self, AckEnvelope, RequestEnvelope};
use crate::{ClientOptions, Mode};

/// The codec both sides use: `u32` little-endian length, bodies up to 1 MiB.
fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .little_endian()
        .length_field_type::<u32>()
        .max_frame_length(wire::MAX_FRAME)
        .new_codec()
}

/// Serves every connection on its own task until killed.
pub async fn serve(socket: &Path) -> anyhow::Result<()> {
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    crate::announce(socket);
    loop {
        let (stream, _) = listener.accept().await.context("accepting")?;
        tokio::spawn(async move {
            if let Err(error) = serve_connection(stream).await {
                eprintln!("tokio-codec server: connection: {error:#}");
            }
        });
    }
}

async fn serve_connection(stream: UnixStream) -> anyhow::Result<()> {
    let mut framed = Framed::new(stream, codec());
    let mut acks = 0u64;
    while let Some(frame) = framed.next().await {
        let frame = frame?;
        let request: RequestEnvelope = serde_json::from_slice(&frame)?;
        if request.message_type != "USER_ACTION" {
            bail!("unexpected message type {}", request.message_type);
        }
        acks += 1;
        let ack = AckEnvelope::success(acks, request.id);
        framed.send(Bytes::from(serde_json::to_vec(&ack)?)).await?;
    }
    Ok(())
}

fn request(n: u64, user: &str) -> anyhow::Result<Bytes> {
    let request = RequestEnvelope::new(n, user);
    Ok(Bytes::from(serde_json::to_vec(&request)?))
}

/// Runs the client; see [`crate::ClientOptions`].
pub async fn client(options: &ClientOptions) -> anyhow::Result<ClientReport> {
    let stream = UnixStream::connect(&options.socket)
        .await
        .with_context(|| format!("connecting to {}", options.socket.display()))?;
    let mut framed = Framed::new(stream, codec());
    let user = options.user.as_str();
    for n in 0..options.warmup {
        framed.send(request(n, user)?).await?;
        framed.next().await.context("the server closed")??;
    }
    let first = options.warmup;
    let mut tally = Tally::new(first, options.count);
    match options.mode {
        Mode::Rtt => {
            let mut samples = Vec::with_capacity(options.count as usize);
            for n in first..first + options.count {
                let start = Instant::now();
                framed.send(request(n, user)?).await?;
                let reply = framed.next().await.context("the server closed")??;
                let ack: AckEnvelope = serde_json::from_slice(&reply)?;
                samples.push(start.elapsed());
                let expected = wire::request_id(n);
                let matches = ack.correlation_id == expected;
                tally.record(Some(&ack.correlation_id), ack.payload.success && matches);
            }
            Ok(ClientReport::rtt(
                "tokio-codec",
                options.warmup,
                &samples,
                &tally,
            ))
        }
        Mode::Throughput => {
            let (read, write) = framed.into_inner().into_split();
            let mut reader = FramedRead::new(read, codec());
            let mut writer = FramedWrite::new(write, codec());
            let count = options.count;
            let start = Instant::now();
            let write_all = async {
                for n in first..first + count {
                    writer.feed(request(n, user)?).await?;
                }
                SinkExt::<Bytes>::flush(&mut writer).await?;
                anyhow::Ok(())
            };
            let read_all = async {
                for _ in 0..count {
                    let reply = reader.next().await.context("the server closed")??;
                    let ack: AckEnvelope = serde_json::from_slice(&reply)?;
                    tally.record(Some(&ack.correlation_id), ack.payload.success);
                }
                anyhow::Ok(start.elapsed())
            };
            let ((), elapsed) = tokio::try_join!(write_all, read_all)?;
            Ok(ClientReport::throughput(
                "tokio-codec",
                options.warmup,
                count,
                elapsed,
                &tally,
            ))
        }
    }
}
