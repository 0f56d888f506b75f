//! Row (c), `tarpc`: an RPC `deliver(RequestEnvelope) -> AckEnvelope` over tarpc's
//! `serde_transport` on a Unix socket with `tokio_serde`'s JSON format.
//!
//! tarpc frames its own messages: each request is a `ClientMessage` (request id,
//! context with deadline and trace ids, and the arguments) and each response a
//! `Response`, serialized as JSON inside `LengthDelimitedCodec` frames (configured here
//! like the other rows: little-endian `u32` lengths, 1 MiB limit). So the bytes on the
//! wire are the Migration envelope plus tarpc's wrapping, not exactly the other rows'
//! frames. The server spawns a task per request, as tarpc's examples do. For throughput
//! the client keeps at most `--window` calls in flight (tarpc's client refuses more than
//! its `max_in_flight_requests`, 1,000 by default).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::{StreamExt, future};
use tarpc::context;
use tarpc::serde_transport::unix;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Json;

use crate::measure::{ClientReport, Tally};
use crate::wire::{self, AckEnvelope, RequestEnvelope};
use crate::{ClientOptions, Mode};

/// The Migration agent-to-service call.
#[tarpc::service]
pub trait Migration {
    /// Delivers one message; returns its acknowledgment.
    async fn deliver(request: RequestEnvelope) -> AckEnvelope;
}

/// The in-memory service behind the tarpc server.
#[derive(Debug, Clone)]
struct Acknowledger;

impl Migration for Acknowledger {
    async fn deliver(self, _: context::Context, request: RequestEnvelope) -> AckEnvelope {
        // A per-call counter would need shared state; the request number keeps ack ids
        // unique and of the same length as the other rows'.
        let n = wire::request_number(&request.id).unwrap_or(0);
        AckEnvelope::success(n, request.id)
    }
}

/// Serves every connection on its own task until killed.
pub async fn serve(socket: &Path) -> anyhow::Result<()> {
    let mut incoming = unix::listen(socket, Json::default)
        .await
        .with_context(|| format!("binding {}", socket.display()))?;
    incoming
        .config_mut()
        .little_endian()
        .max_frame_length(wire::MAX_FRAME);
    crate::announce(socket);
    while let Some(transport) = incoming.next().await {
        let transport = transport.context("accepting")?;
        let channel = BaseChannel::with_defaults(transport);
        tokio::spawn(
            channel
                .execute(Acknowledger.serve())
                .for_each(|call| async move {
                    tokio::spawn(call);
                }),
        );
    }
    Ok(())
}

fn check(ack: &AckEnvelope, expected: &str) -> bool {
    ack.payload.success && ack.correlation_id == expected
}

/// Runs the client; see [`crate::ClientOptions`].
pub async fn client(options: &ClientOptions) -> anyhow::Result<ClientReport> {
    let mut connect = unix::connect(&options.socket, Json::default);
    connect
        .config_mut()
        .little_endian()
        .max_frame_length(wire::MAX_FRAME);
    let transport = connect
        .await
        .with_context(|| format!("connecting to {}", options.socket.display()))?;
    let client = MigrationClient::new(tarpc::client::Config::default(), transport).spawn();
    let user = options.user.as_str();
    for n in 0..options.warmup {
        client
            .deliver(context::current(), RequestEnvelope::new(n, user))
            .await?;
    }
    let first = options.warmup;
    let mut tally = Tally::new(first, options.count);
    match options.mode {
        Mode::Rtt => {
            let mut samples = Vec::with_capacity(options.count as usize);
            for n in first..first + options.count {
                let start = Instant::now();
                let ack = client
                    .deliver(context::current(), RequestEnvelope::new(n, user))
                    .await?;
                samples.push(start.elapsed());
                tally.record(Some(&ack.correlation_id), check(&ack, &wire::request_id(n)));
            }
            Ok(ClientReport::rtt("tarpc", options.warmup, &samples, &tally))
        }
        Mode::Throughput => {
            if options.window == 0 {
                bail!("--window must be at least 1");
            }
            let count = options.count;
            let start = Instant::now();
            let calls = futures::stream::iter(first..first + count)
                .map(|n| {
                    let client = &client;
                    async move {
                        let ack = client
                            .deliver(context::current(), RequestEnvelope::new(n, user))
                            .await?;
                        anyhow::Ok((n, ack))
                    }
                })
                .buffer_unordered(options.window);
            let mut failure = None;
            calls
                .for_each(|result| {
                    match result {
                        Ok((n, ack)) => {
                            tally.record(
                                Some(&ack.correlation_id),
                                check(&ack, &wire::request_id(n)),
                            );
                        }
                        Err(error) => {
                            failure.get_or_insert(error);
                        }
                    }
                    future::ready(())
                })
                .await;
            let elapsed = start.elapsed();
            if let Some(error) = failure {
                return Err(error);
            }
            Ok(ClientReport::throughput(
                "tarpc",
                options.warmup,
                count,
                elapsed,
                &tally,
            ))
        }
    }
}
