//! Giving memory back after a crowd leaves.
//!
//! glibc's allocator returns freed memory to the system only from the top of each heap, and only
//! when a later `free` finds enough there. 19,500 streams that come and go leave their memory
//! spread under allocations that stay (measured: about 60 MB still resident right after they
//! closed, 11 MB after the next requests, on a 8 MB process), so the process would keep its peak.
//! `malloc_trim(0)` walks every heap and hands back each free page, wherever it is. It is called
//! when the connections held have fallen to half of their peak since the last call, and by at
//! least [`CROWD`]: a crowd left, not a few visitors.

use crate::listener::Budget;
use std::sync::Weak;
use std::time::Duration;

/// How many connections must have gone before memory is handed back.
pub const CROWD: usize = 1_000;
/// How often the connection count is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Hands free pages back to the system; true if any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() -> bool {
    // SAFETY: malloc_trim takes no pointers and has no preconditions; glibc locks each arena
    // while it walks it, so it is safe with other threads allocating.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Elsewhere the allocator gives memory back by itself (or has no such call).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}

/// Whether a crowd has left since the peak: see the module docs.
pub fn crowd_left(peak: usize, open: usize) -> bool {
    peak >= open.saturating_mul(2) && peak - open >= CROWD
}

/// Watches the connections held and gives memory back whenever a crowd has left; ends with the
/// server (its budget dropped).
pub async fn give_back_after_crowds(connections: Weak<Budget>) {
    let mut peak = 0;
    let mut every = tokio::time::interval(EVERY);
    loop {
        every.tick().await;
        let Some(budget) = connections.upgrade() else {
            return;
        };
        let open = budget.open();
        drop(budget);
        peak = peak.max(open);
        if crowd_left(peak, open) {
            peak = open;
            // It walks every heap (milliseconds on a large one): off the runtime's workers.
            let returned = tokio::task::spawn_blocking(give_back)
                .await
                .unwrap_or(false);
            tracing::debug!(open, returned, "memory handed back after a crowd left");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_crowd_halving_the_peak_counts() {
        assert!(crowd_left(19_500, 0));
        assert!(crowd_left(2_000, 1_000));
        assert!(!crowd_left(2_000, 1_001), "not yet half");
        assert!(!crowd_left(1_500, 600), "under a crowd");
        assert!(!crowd_left(0, 0));
    }
}
