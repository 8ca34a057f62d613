//! `AtomicState`: the seed's process state machine in one atomic byte, changed only by
//! compare-and-swap along the edges `State::can_transition` allows. Readers never lock.

use std::sync::atomic::{AtomicU8, Ordering};

use super::State;
use crate::{Error, Result};

/// The seed's state machine in one `AtomicU8`; every change is a compare-and-swap along an
/// allowed edge ([`State::can_transition`]).
#[derive(Debug)]
pub struct AtomicState(AtomicU8);

impl AtomicState {
    /// A machine in `state`.
    pub fn new(state: State) -> Self {
        AtomicState(AtomicU8::new(state as u8))
    }

    /// The current state.
    pub fn get(&self) -> State {
        State::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves `from` → `to`. A disallowed edge, or a current state other than `from`, is an
    /// [`Error::InvalidTransition`] naming the current state and `to`.
    pub fn transition(&self, from: State, to: State) -> Result<()> {
        if !State::can_transition(from, to) {
            return Err(Error::InvalidTransition {
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|cur| Error::InvalidTransition {
                from: State::from_u8(cur).as_str(),
                to: to.as_str(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thread::SMALL_STACK;
    use std::sync::Arc;

    #[test]
    fn every_allowed_edge_and_every_other_is_refused() {
        for from in State::ALL {
            for to in State::ALL {
                let m = AtomicState::new(from);
                let r = m.transition(from, to);
                assert_eq!(r.is_ok(), State::can_transition(from, to), "{from} -> {to}");
                if let Err(e) = r {
                    assert_eq!(m.get(), from);
                    let msg = e.to_string();
                    assert!(
                        msg.contains(from.as_str()) && msg.contains(to.as_str()),
                        "{msg}"
                    );
                } else {
                    assert_eq!(m.get(), to);
                }
            }
        }
    }

    #[test]
    fn cas_from_wrong_state_names_the_current_one() {
        let m = AtomicState::new(State::Stopped);
        let e = m.transition(State::Running, State::Stopping).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid state transition: stopped -> stopping"
        );
    }

    #[test]
    fn the_seed_path() {
        let m = AtomicState::new(State::Pending);
        for (a, b) in [
            (State::Pending, State::Starting),
            (State::Starting, State::Running),
            (State::Running, State::Stopping),
            (State::Stopping, State::Stopped),
        ] {
            m.transition(a, b).unwrap();
        }
        assert!(m.get().is_terminal());
    }

    #[test]
    fn cas_race_has_one_winner() {
        let m = Arc::new(AtomicState::new(State::Running));
        let wins: usize = (0..8)
            .map(|i| {
                let m = Arc::clone(&m);
                crate::thread::spawn("test-cas", SMALL_STACK, move || {
                    let to = if i % 2 == 0 {
                        State::Stopping
                    } else {
                        State::Failed
                    };
                    m.transition(State::Running, to).is_ok() as usize
                })
                .unwrap()
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(wins, 1);
    }
}
