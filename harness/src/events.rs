//! The run's event bus: what changed in a running landscape, for whoever watches it live (the
//! dashboard's Server-Sent Events). Control actions and the flow log publish; subscribers get
//! every event sent after they subscribed.
//!
//! Events say *that* something changed, not the new state: a subscriber reads the state itself
//! when it wakes, so one that fell behind (a lagged receiver) only has to read once to catch up.

use tokio::sync::broadcast;

/// Events buffered per subscriber before the oldest are dropped (the subscriber then sees
/// `Lagged` and re-reads the state).
const CAPACITY: usize = 256;

/// One change of a running landscape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The network state changed (a peering, an NSG rule, a region outage, an active region);
    /// the text says what, as the dashboard shows it.
    Network(String),
    /// The run's clock was shifted or reset.
    Clock,
    /// The flow log has a new record.
    Flow,
}

/// A cheap-to-clone handle on the bus.
#[derive(Clone, Debug)]
pub struct EventBus(broadcast::Sender<Event>);

impl Default for EventBus {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl EventBus {
    /// Sends `event` to every subscriber (none listening is fine: nobody is watching).
    pub fn publish(&self, event: Event) {
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_what_is_published_after_they_subscribe() {
        let bus = EventBus::default();
        bus.publish(Event::Clock);
        let mut rx = bus.subscribe();
        bus.publish(Event::Network("peering a off".into()));
        assert_eq!(
            rx.recv().await.ok(),
            Some(Event::Network("peering a off".into()))
        );
        assert!(rx.try_recv().is_err());
    }
}
