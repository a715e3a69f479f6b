//! How a decision explains itself.
//!
//! Every method reports its reasoning through a [`Trace`]. The answer path
//! passes `()`, whose methods are empty and whose closures are never called,
//! so the compiled hot path is the same as without tracing; `steerdns
//! explain` passes an [`Explanation`], which keeps each step. One code path
//! for both means the explanation cannot drift from what is answered.

use super::ServiceRule;

/// One step of a decision, as `steerdns explain` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index of the service being decided (filled in by the tracer for
    /// endpoint steps).
    pub service: u32,
    /// What the step is about.
    pub kind: StepKind,
    /// Nesting depth, for indentation.
    pub depth: u8,
    /// What happened.
    pub text: String,
}

/// What a [`Step`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Entering a service (the first, or a nested one).
    Service,
    /// One endpoint of the current service, by name.
    Endpoint(Box<str>),
    /// A remark about the current service.
    Note,
}

impl Step {
    /// Entering a service.
    pub fn service(index: u32, depth: u8, rule: &ServiceRule) -> Step {
        Step {
            service: index,
            kind: StepKind::Service,
            depth,
            text: format!("service {} ({} routing)", rule.name, rule.method.name()),
        }
    }

    /// A remark about the service being decided.
    pub fn note(index: u32, text: String) -> Step {
        Step {
            service: index,
            kind: StepKind::Note,
            depth: 0,
            text,
        }
    }
}

/// Receives the steps of a decision.
pub trait Trace {
    /// Records a step; `make` is called only by tracers that keep steps.
    fn step(&mut self, make: impl FnOnce() -> Step);

    /// Whether steps are kept: loops that only feed the tracer are skipped
    /// on the answer path.
    fn enabled(&self) -> bool {
        true
    }

    /// Records what happened to endpoint `index` of `rule`.
    fn endpoint(&mut self, rule: &ServiceRule, index: usize, why: impl FnOnce() -> String) {
        self.step(|| Step {
            service: 0,
            kind: StepKind::Endpoint(rule.endpoints[index].name.clone()),
            depth: 0,
            text: why(),
        });
    }
}

/// The answer path's tracer: keeps nothing.
impl Trace for () {
    #[inline(always)]
    fn step(&mut self, _make: impl FnOnce() -> Step) {}

    #[inline(always)]
    fn enabled(&self) -> bool {
        false
    }

    #[inline(always)]
    fn endpoint(&mut self, _rule: &ServiceRule, _index: usize, _why: impl FnOnce() -> String) {}
}

/// Every step of one decision, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// The steps.
    pub steps: Vec<Step>,
    depth: u8,
    service: u32,
}

impl Trace for Explanation {
    fn step(&mut self, make: impl FnOnce() -> Step) {
        let mut step = make();
        if step.kind == StepKind::Service {
            self.depth = step.depth;
            self.service = step.service;
        }
        step.service = self.service;
        step.depth = self.depth;
        self.steps.push(step);
    }
}
