//! `herald-loadgen idle`: waits until the whole machine is quiet, so that a run does not start
//! on top of a compile or the previous run's tail. Busy share is measured from `/proc/stat`
//! over one-second windows.

use crate::result::IdleGate;
use crate::usage::MachineTicks;
use anyhow::Result;
use std::time::{Duration, Instant};

/// `herald-loadgen idle`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct IdleArgs {
    /// The busy share (percent of all CPUs, over 1 s) the machine must be below.
    #[arg(long, default_value_t = 15.0)]
    pub below: f64,
    /// Give up after this many seconds (exit 0 all the same, and say `timeout`).
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// Waits for the machine to be idle; prints the verdict (`ok` or `timeout`) alone on stdout,
/// for the script to pass to the next run, and the details on stderr.
pub fn run(args: &IdleArgs) -> Result<IdleGate> {
    let started = Instant::now();
    let mut before = MachineTicks::read()?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = MachineTicks::read()?;
        let busy = now.busy_percent_since(&before);
        before = now;
        if busy < args.below {
            eprintln!(
                "idle: machine {busy:.1}% busy (< {}%) after {:.0} s",
                args.below,
                started.elapsed().as_secs_f64()
            );
            println!("ok");
            return Ok(IdleGate::Ok);
        }
        if started.elapsed() >= Duration::from_secs(args.timeout_secs) {
            eprintln!(
                "idle: WARNING the machine is still {busy:.1}% busy after {} s; running anyway (flagged idle_gate=timeout)",
                args.timeout_secs
            );
            println!("timeout");
            return Ok(IdleGate::Timeout);
        }
    }
}
