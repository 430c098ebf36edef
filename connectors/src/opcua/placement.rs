//! Placing monitored items into subscriptions within the server's limits.
//!
//! Servers cap the items per CreateMonitoredItems call (OperationLimits, 1,000 for
//! async-opcua) and often per subscription (async-opcua: 1,000, not published anywhere the
//! client can read it). A site has thousands of signals, so the source sends chunks, opens
//! another subscription when one is full, and learns the limits from the server's refusals
//! (`BadTooManyOperations`, `BadTooManyMonitoredItems`) instead of failing every tag.
//! The logic talks to the server through [`ItemServer`] so that it can be tested alone.

use opcua::types::{NodeId, StatusCode};

/// Chunk size when the server does not say.
pub(crate) const DEFAULT_PER_CALL: usize = 500;
/// Never more per call than this, whatever the server allows: keeps requests and responses
/// far from any message size limit.
pub(crate) const MAX_PER_CALL: usize = 1_000;
/// Items per subscription when the server does not say. Few servers publish their limit;
/// async-opcua's is 1,000 and smaller subscriptions cost little, whereas finding a limit
/// by refusals costs a few refused calls (each logged as an error by the client library).
pub(crate) const DEFAULT_PER_SUBSCRIPTION: usize = 1_000;

/// One monitored item to create: the signal's client handle and its node on this server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wanted {
    pub(crate) handle: u32,
    pub(crate) node: NodeId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) per_call: usize,
    pub(crate) per_subscription: Option<usize>,
    /// `per_subscription` was published by the server or learned from a refusal, not
    /// assumed.
    pub(crate) per_subscription_known: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_call: DEFAULT_PER_CALL,
            per_subscription: Some(DEFAULT_PER_SUBSCRIPTION),
            per_subscription_known: false,
        }
    }
}

impl Limits {
    /// From the server's OperationLimits / capabilities, where 0 or absent means "not
    /// stated": then what was learned before (`known`) holds.
    pub(crate) fn from_server(
        per_call: Option<u32>,
        per_subscription: Option<u32>,
        known: Limits,
    ) -> Self {
        let per_call = match per_call {
            None | Some(0) => known.per_call,
            Some(n) => (n as usize).clamp(1, MAX_PER_CALL),
        };
        let (per_subscription, per_subscription_known) = match per_subscription {
            None | Some(0) => (known.per_subscription, known.per_subscription_known),
            Some(n) => (Some(n as usize), true),
        };
        Limits {
            per_call,
            per_subscription,
            per_subscription_known,
        }
    }
}

/// A subscription on the server and how many items it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) id: u32,
    pub(crate) items: usize,
    /// The server refused more items for it.
    pub(crate) full: bool,
}

#[async_trait::async_trait]
pub(crate) trait ItemServer: Send {
    async fn create_subscription(&mut self) -> Result<u32, StatusCode>;
    /// One status per item, in order; `Err` is a failure of the whole call.
    async fn create_items(
        &mut self,
        subscription: u32,
        items: &[Wanted],
    ) -> Result<Vec<StatusCode>, StatusCode>;
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outcome {
    /// (handle, subscription id)
    pub(crate) created: Vec<(u32, u32)>,
    /// (handle, why)
    pub(crate) failed: Vec<(u32, StatusCode)>,
    /// A call failed as a whole (connection lost, server refusing any subscription): the
    /// items not yet placed are in `failed` with this status and are worth retrying later.
    pub(crate) aborted: Option<StatusCode>,
}

/// Creates `wanted` items in the existing `slots` with room, then in new subscriptions.
/// Refusals adjust `limits` so that later placements start from what the server accepts.
pub(crate) async fn place(
    server: &mut dyn ItemServer,
    limits: &mut Limits,
    slots: &mut Vec<Slot>,
    wanted: Vec<Wanted>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut rest: &[Wanted] = &wanted;
    // After a refusal for "too many items in this subscription", the call size that is
    // tried next on that subscription: halving finds its exact limit in a few calls.
    let mut probe: Option<(u32, usize)> = None;
    while !rest.is_empty() {
        let room = |s: &Slot| match limits.per_subscription {
            Some(max) => max.saturating_sub(s.items),
            None => usize::MAX,
        };
        let index = match slots.iter().position(|s| !s.full && room(s) > 0) {
            Some(i) => i,
            None => match server.create_subscription().await {
                Ok(id) => {
                    slots.push(Slot {
                        id,
                        items: 0,
                        full: false,
                    });
                    slots.len() - 1
                }
                Err(code)
                    if code == StatusCode::BadTooManySubscriptions
                        && !limits.per_subscription_known =>
                {
                    // No more subscriptions, and the per-subscription limit was only assumed:
                    // the existing ones may hold more. Find out by filling them.
                    limits.per_subscription = None;
                    limits.per_subscription_known = true;
                    continue;
                }
                Err(code) => {
                    fail_all(&mut out, rest, code);
                    break;
                }
            },
        };
        let slot = &mut slots[index];
        let mut n = rest.len().min(limits.per_call).min(room(slot));
        if let Some((id, size)) = probe {
            if id == slot.id {
                n = n.min(size);
            }
        }
        match server.create_items(slot.id, &rest[..n]).await {
            Ok(results) => {
                for (i, item) in rest[..n].iter().enumerate() {
                    // A response with fewer results than items is a server bug; the items
                    // without a result are reported, not assumed created.
                    let code = results
                        .get(i)
                        .copied()
                        .unwrap_or(StatusCode::BadUnexpectedError);
                    if code.is_good() {
                        slot.items += 1;
                        out.created.push((item.handle, slot.id));
                    } else {
                        out.failed.push((item.handle, code));
                    }
                }
                rest = &rest[n..];
            }
            Err(code) if code == StatusCode::BadTooManyOperations && n > 1 => {
                limits.per_call = n / 2;
            }
            Err(code) if code == StatusCode::BadTooManyMonitoredItems && n > 1 => {
                probe = Some((slot.id, n / 2));
            }
            Err(code) if code == StatusCode::BadTooManyMonitoredItems && slot.items > 0 => {
                // Not even one more: the subscription holds exactly the server's limit,
                // which new subscriptions are then filled to without refusals.
                slot.full = true;
                if limits.per_subscription.is_none_or(|m| m > slot.items) {
                    limits.per_subscription = Some(slot.items);
                }
                limits.per_subscription_known = true;
            }
            Err(code) => {
                fail_all(&mut out, rest, code);
                break;
            }
        }
    }
    out
}

fn fail_all(out: &mut Outcome, rest: &[Wanted], code: StatusCode) {
    out.failed.extend(rest.iter().map(|w| (w.handle, code)));
    out.aborted = Some(code);
}
