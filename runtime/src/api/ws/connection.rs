//! One connection's life: hello, authentication, the heartbeat, delivering what its
//! subscriptions want, and the goodbye. This module owns the socket's I/O.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::{debug, warn};

use super::handshake::{
    Credentials, OpenSockets, Verification, not_allowed, principal_json, same_principal,
    too_many_sockets, verify,
};
use super::protocol::{ClientMessage, answer, error_message, read, refuse, text};
use super::subscriptions::Subscriptions;
use super::{
    CLOSE_FORBIDDEN, CLOSE_LAGGED, CLOSE_NO_PONG, CLOSE_TOO_MANY, CLOSE_UNAUTHORIZED,
    FAREWELL_TIMEOUT, MAX_REVERIFY_FAILURES, PROTOCOL_VERSION,
};
use crate::auth::{Auth, Permission, Principal, Secret};
use crate::bus::{BusItem, EventBus, EventType, stopped};

/// What a connection needs besides its socket.
pub(super) struct ClientContext {
    pub(super) bus: EventBus,
    pub(super) auth: Auth,
    pub(super) auth_timeout: Duration,
    pub(super) reverify: Duration,
    pub(super) sockets: std::sync::Arc<OpenSockets>,
    pub(super) max_per_principal: usize,
}

/// Why a connection ends.
#[derive(Debug, PartialEq)]
pub(super) enum End {
    Shutdown,
    /// The connection broke, or the client went away without a close frame.
    Gone,
    ClientClosed,
    NoPong,
    /// The client fell behind (`missed` events), or events were lost before reaching it
    /// (`missed` unknown).
    Lagged {
        missed: Option<u64>,
    },
    /// Closed over authentication: the client is told why (`error` with `code` and
    /// `message`, echoing `id`), then closed with `close`.
    Refused {
        code: &'static str,
        message: String,
        id: Option<Value>,
        close: u16,
        reason: &'static str,
    },
}

impl End {
    pub(super) fn unauthorized(message: String, id: &Option<Value>) -> End {
        End::Refused {
            code: "unauthorized",
            message,
            id: id.clone(),
            close: CLOSE_UNAUTHORIZED,
            reason: "unauthorized",
        }
    }

    pub(super) fn forbidden(principal: &Principal, id: &Option<Value>) -> End {
        End::Refused {
            code: "forbidden",
            message: not_allowed(principal),
            id: id.clone(),
            close: CLOSE_FORBIDDEN,
            reason: "forbidden",
        }
    }

    pub(super) fn unavailable(id: &Option<Value>) -> End {
        End::Refused {
            code: "internal",
            message: "credentials cannot be checked now; reconnect later".to_owned(),
            id: id.clone(),
            close: axum::extract::ws::close_code::ERROR,
            reason: "cannot check credentials",
        }
    }
}

/// The heartbeat: a ping every period; a client that has not answered one by the next is done.
#[derive(Default)]
pub(super) struct Heartbeat {
    pub(super) unanswered: bool,
    /// A ping is to be sent as soon as the socket is free.
    pub(super) due: bool,
}

impl Heartbeat {
    pub(super) fn tick(&mut self) -> Result<(), End> {
        if self.unanswered {
            return Err(End::NoPong);
        }
        self.unanswered = true;
        self.due = true;
        Ok(())
    }
}

/// What a connection watches while its socket is busy.
pub(super) struct Watch<'a> {
    pub(super) rx: &'a broadcast::Receiver<BusItem>,
    publications: &'a mut watch::Receiver<u64>,
    pub(super) ticker: &'a mut Interval,
    pub(super) heartbeat: &'a mut Heartbeat,
    pub(super) shutdown: &'a mut watch::Receiver<bool>,
    pub(super) capacity: usize,
}

impl Watch<'_> {
    /// Waits for `sending` to finish, but gives up when the client falls too far behind, stops
    /// answering pings, or the server stops: a client that does not read must not hold its
    /// connection (and its place in the bus) forever.
    pub(super) async fn send(
        &mut self,
        sending: impl Future<Output = Result<(), axum::Error>>,
    ) -> Result<(), End> {
        tokio::pin!(sending);
        loop {
            tokio::select! {
                biased;
                sent = &mut sending => return sent.map_err(|_| End::Gone),
                _ = stopped(self.shutdown) => return Err(End::Shutdown),
                changed = self.publications.changed() => {
                    if changed.is_err() {
                        return Err(End::Shutdown);
                    }
                    let behind = self.rx.len();
                    if behind > self.capacity {
                        return Err(End::Lagged { missed: Some((behind - self.capacity) as u64) });
                    }
                }
                _ = self.ticker.tick() => self.heartbeat.tick()?,
            }
        }
    }
}

impl ClientContext {
    /// Handles an `auth` message: authenticates the connection, or re-authenticates it as the
    /// same principal with a new token. Returns the answer, or how the connection ends.
    pub(super) async fn authenticate(
        &self,
        credentials: &mut Option<Credentials>,
        bearer: Secret,
        id: &Option<Value>,
    ) -> Result<Message, End> {
        let principal = match verify(&self.auth, &bearer).await {
            Ok(principal) => principal,
            Err(Verification::Refused(why)) => return Err(End::unauthorized(why, id)),
            Err(Verification::Unavailable(detail)) => {
                warn!(error = %detail, "cannot verify a websocket client's credentials");
                return Err(End::unavailable(id));
            }
        };
        if let Some(current) = credentials.as_ref()
            && !same_principal(&current.principal, &principal)
        {
            return Err(End::Refused {
                code: "principal_changed",
                message: format!(
                    "this connection is {}'s and the token is {}'s; open a new connection to \
                     change who is signed in",
                    current.principal.actor, principal.actor
                ),
                id: id.clone(),
                close: CLOSE_UNAUTHORIZED,
                reason: "principal changed",
            });
        }
        if !principal.can(Permission::Read) {
            return Err(End::forbidden(&principal, id));
        }
        debug!(actor = %principal.actor, "websocket client authenticated");
        let answer = answer(
            json!({"type": "authenticated", "principal": principal_json(&principal)}),
            id,
        );
        // Re-authentication keeps the connection's place; a first one takes one.
        let slot = match credentials.take() {
            Some(current) => current._slot,
            None => self
                .sockets
                .take(principal.actor.clone(), self.max_per_principal)
                .ok_or_else(|| End::Refused {
                    code: "too_many_sockets",
                    message: too_many_sockets(&principal.actor, self.max_per_principal),
                    id: id.clone(),
                    close: CLOSE_TOO_MANY,
                    reason: "too many sockets",
                })?,
        };
        *credentials = Some(Credentials {
            bearer,
            principal,
            _slot: slot,
        });
        Ok(answer)
    }

    /// Checks a connection's credentials again. A refusal ends the connection; so do
    /// [`MAX_REVERIFY_FAILURES`] checks in a row that could not be made.
    pub(super) async fn reverify(
        &self,
        credentials: &mut Credentials,
        failures: &mut u32,
    ) -> Result<(), End> {
        match verify(&self.auth, &credentials.bearer).await {
            Ok(principal) => {
                *failures = 0;
                if !principal.can(Permission::Read) {
                    return Err(End::forbidden(&principal, &None));
                }
                // The same bearer, so the same principal; its role may have changed.
                credentials.principal = principal;
                Ok(())
            }
            Err(Verification::Refused(why)) => {
                debug!(actor = %credentials.principal.actor, reason = %why, "websocket client's credentials refused");
                Err(End::unauthorized(why, &None))
            }
            Err(Verification::Unavailable(detail)) => {
                *failures += 1;
                warn!(
                    actor = %credentials.principal.actor,
                    failures = *failures,
                    error = %detail,
                    "cannot re-verify a websocket client's credentials"
                );
                if *failures >= MAX_REVERIFY_FAILURES {
                    Err(End::unavailable(&None))
                } else {
                    Ok(())
                }
            }
        }
    }
}

pub(super) async fn serve(
    socket: WebSocket,
    client: ClientContext,
    mut credentials: Option<Credentials>,
) {
    let bus = &client.bus;
    let counted = bus.client_connected();
    let (mut sink, mut stream) = socket.split();
    // Subscribed to the bus from the start: nothing published after `subscribed` is answered
    // can be missed.
    let mut rx = bus.subscribe();
    let mut publications = bus.publications();
    let mut shutdown = bus.shutdown();
    let heartbeat_every = bus.heartbeat();
    let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = Heartbeat::default();
    let mut subscriptions = Subscriptions::default();
    let mut reverify = tokio::time::interval_at(Instant::now() + client.reverify, client.reverify);
    reverify.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reverify_failures = 0;
    // Only watched until the client is authenticated.
    let auth_deadline = tokio::time::sleep(client.auth_timeout);
    tokio::pin!(auth_deadline);

    let mut hello = json!({
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "node": bus.node(),
        "stream": bus.stream(),
        "cursor": bus.cursor(),
        "event_types": EventType::ALL.map(EventType::as_str),
        "heartbeat_ms": heartbeat_every.as_millis() as u64,
        "client_queue": bus.client_queue(),
        "reverify_ms": client.reverify.as_millis() as u64,
    });
    match &credentials {
        Some(credentials) => {
            hello["auth"] = "authenticated".into();
            hello["principal"] = principal_json(&credentials.principal);
        }
        None => {
            hello["auth"] = "required".into();
            hello["auth_timeout_ms"] = (client.auth_timeout.as_millis() as u64).into();
        }
    }
    let mut outbox: VecDeque<Message> = VecDeque::new();
    outbox.push_back(text(hello));

    let end = 'connection: loop {
        if heartbeat.due {
            heartbeat.due = false;
            outbox.push_back(Message::Ping(Default::default()));
        }
        while let Some(message) = outbox.pop_front() {
            let mut watch = Watch {
                rx: &rx,
                publications: &mut publications,
                ticker: &mut ticker,
                heartbeat: &mut heartbeat,
                shutdown: &mut shutdown,
                capacity: bus.client_queue(),
            };
            if let Err(end) = watch.send(sink.send(message)).await {
                break 'connection end;
            }
        }
        if heartbeat.due {
            continue;
        }
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break End::Shutdown,
            _ = ticker.tick() => {
                if let Err(end) = heartbeat.tick() {
                    break end;
                }
            }
            _ = &mut auth_deadline, if credentials.is_none() => break End::Refused {
                code: "auth_timeout",
                message: format!(
                    "no `auth` message within {} ms of connecting",
                    client.auth_timeout.as_millis()
                ),
                id: None,
                close: CLOSE_UNAUTHORIZED,
                reason: "authentication timed out",
            },
            _ = reverify.tick(), if credentials.is_some() => {
                if let Some(credentials) = credentials.as_mut()
                    && let Err(end) = client.reverify(credentials, &mut reverify_failures).await
                {
                    break end;
                }
            }
            frame = stream.next() => match frame {
                None | Some(Err(_)) => break End::Gone,
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Ok(Message::Pong(_))) => heartbeat.unanswered = false,
                // The socket answers pings itself.
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Text(t))) => match read(&t) {
                    Err(refusal) => outbox.push_back(refusal),
                    Ok((ClientMessage::Auth(bearer), id)) => {
                        match client.authenticate(&mut credentials, bearer, &id).await {
                            Ok(answer) => {
                                outbox.push_back(answer);
                                // Just verified: the next check is a period from now.
                                reverify.reset();
                                reverify_failures = 0;
                            }
                            Err(end) => break end,
                        }
                    }
                    Ok((ClientMessage::Request(_), id)) if credentials.is_none() => {
                        outbox.push_back(error_message(
                            refuse(
                                "auth_required",
                                "authenticate first: send {\"type\": \"auth\", \"token\": ...}",
                            ),
                            &id,
                        ));
                    }
                    Ok((ClientMessage::Request(request), id)) => {
                        outbox.extend(subscriptions.handle(request, &id, bus));
                    }
                },
                Some(Ok(Message::Binary(_))) => outbox.push_back(error_message(
                    refuse("bad_message", "binary messages are not understood; send JSON text"),
                    &None,
                )),
            },
            item = rx.recv() => match item {
                Ok(BusItem::Event(event)) => {
                    if subscriptions.wants(&event) {
                        outbox.push_back(Message::Text(event.text()));
                    }
                }
                Ok(BusItem::Gap { cursor }) => {
                    // A gap already behind a resumption's replay was checked by it.
                    if cursor > subscriptions.replayed_through {
                        break End::Lagged { missed: None };
                    }
                }
                Err(RecvError::Lagged(missed)) => break End::Lagged { missed: Some(missed) },
                Err(RecvError::Closed) => break End::Shutdown,
            },
        }
    };

    let goodbye: Vec<Message> = match &end {
        End::Lagged { missed } => {
            if missed.is_some() {
                bus.client_lagged();
            }
            vec![
                text(json!({"type": "lagged", "missed": missed})),
                close(CLOSE_LAGGED, "lagged: missed events"),
            ]
        }
        End::NoPong => {
            bus.client_timed_out();
            vec![close(CLOSE_NO_PONG, "no pong")]
        }
        End::Shutdown => vec![close(
            axum::extract::ws::close_code::AWAY,
            "server stopping",
        )],
        End::Refused {
            code,
            message,
            id,
            close: code_,
            reason,
        } => vec![
            error_message(refuse(code, message.clone()), id),
            close(*code_, reason),
        ],
        End::ClientClosed | End::Gone => Vec::new(),
    };
    let actor = credentials.as_ref().map(|c| c.principal.actor.as_str());
    debug!(?end, actor, "websocket client done");
    let farewell = async {
        for message in goodbye {
            sink.send(message).await?;
        }
        // Also flushes the answer to a client's close frame.
        sink.close().await
    };
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await;
    // Uncounted before the socket closes (when `sink` and `stream` drop), so that whoever sees
    // the connection end also sees it gone from the statistics.
    drop(counted);
}

pub(super) fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}
