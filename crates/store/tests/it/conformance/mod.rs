//! The contract of `xdm_core::ports::Store`, as generic cases any backend must pass.
//!
//! Each case is `async fn case<S: Store, F: Future<Output = Fresh<S>>>(fresh: impl Fn() -> F)`:
//! it asks the factory for a fresh, empty store and asserts exact values. `conformance_suite!`
//! turns the list below into one `#[tokio::test]` per case for a backend.

mod fencing;
mod jobs;
mod profiles;
mod purge;
mod records;
mod sessions;

pub use fencing::*;
pub use jobs::*;
pub use profiles::*;
pub use purge::*;
pub use records::*;
pub use sessions::*;

/// One test per conformance case, for the backend built by `$factory`.
macro_rules! conformance_suite {
    ($factory:path) => {
        conformance_cases!(
            $factory;
            sessions_insert_then_find,
            sessions_second_open_is_refused,
            sessions_end_then_reopen,
            sessions_set_connection,
            sessions_ended_rows_do_not_hold_the_pair,
            sessions_contact_id_is_unique,
            sessions_insert_race,
            profiles_ttl,
            profiles_round_trip,
            jobs_enqueue_dedup,
            jobs_lane_heads_follow_lane_order,
            jobs_not_before_is_respected,
            jobs_lane_heads_soonest_due_first_and_limit,
            jobs_lane_head_is_the_lanes_head,
            jobs_lane_jobs_list_one_lane_in_order,
            jobs_lease_blocks_the_lane,
            jobs_claim_is_compare_and_set,
            jobs_claim_deferred_is_a_claim,
            jobs_claim_refusals,
            jobs_reschedule,
            jobs_finish,
            jobs_retry_failed,
            jobs_release_claims,
            jobs_list,
            jobs_backlog,
            jobs_first_claim_time,
            jobs_fencing_stale_worker_is_fenced_out,
            jobs_fencing_finished_jobs_stay_finished,
            jobs_fencing_concurrent_claimants,
            jobs_fencing_renew_lease,
            purge_deletes_only_what_expired,
            records_absent_version_any,
            records_deferred_put_is_a_put,
            records_delete_conditions,
            records_prefix_listing,
            records_values_round_trip,
            records_concurrent_writers,
        );
    };
}

macro_rules! conformance_cases {
    ($factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                crate::conformance::$case($factory).await;
            }
        )*
    };
}
