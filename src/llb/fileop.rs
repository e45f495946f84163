//! A FileOp builder that owns BuildKit's index rules, so callers never
//! write `input`/`secondary_input`/`output` numbers by hand.
//!
//! The rules (solver/pb, FileOp): an action's `input` is `-1` (scratch), an
//! index into the op's inputs, or `len(inputs) + n` for the result of
//! action `n`; `secondary_input` (a copy's source) indexes the inputs; the
//! one action whose `output` is `0` is the op's result, every other has
//! `-1`. Here the result is always the last action.

use bollard_buildkit_proto::pb;
use pb::file_action::Action;

use super::{input, Output};
use crate::plan::Owner;

/// What an action works on.
#[derive(Debug, Clone, Copy)]
pub enum On {
    Scratch,
    /// The op's input of that index (from [`FileOp::input`]).
    Input(usize),
    /// The result of the action before.
    Previous,
}

#[derive(Default)]
pub struct FileOp {
    inputs: Vec<pb::Input>,
    actions: Vec<pb::FileAction>,
    /// The actions that work on the action before: their `input` is set
    /// in `finish`, when the number of inputs is final (an input added
    /// after an action would shift `len(inputs) + n`).
    on_previous: Vec<usize>,
}

impl FileOp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an input state; its index for [`On::Input`] and copies.
    pub fn input(&mut self, o: &Output) -> usize {
        self.inputs.push(input(o));
        self.inputs.len() - 1
    }

    fn on(&self, on: On) -> i64 {
        match on {
            On::Scratch => -1,
            On::Input(i) => i as i64,
            On::Previous => {
                assert!(!self.actions.is_empty(), "On::Previous needs an action before");
                -1
            }
        }
    }

    fn push(&mut self, on: On, secondary: i64, action: Action) {
        let input = self.on(on);
        if matches!(on, On::Previous) {
            self.on_previous.push(self.actions.len());
        }
        self.actions.push(pb::FileAction { input, secondary_input: secondary, output: -1, action: Some(action) });
    }

    /// Copies `src` of input `from` to `dest` (as COPY does: contents of a
    /// directory, wildcards, parents created, owner when given).
    pub fn copy(&mut self, on: On, from: usize, src: String, dest: String, owner: Option<Owner>) -> &mut Self {
        self.push(on, from as i64, Action::Copy(copy_action(src, dest, owner)));
        self
    }

    /// A copy; with `epoch`, its files and the directories it makes get
    /// mtime 0 (else they keep the source's).
    pub fn copy_at(&mut self, on: On, from: usize, src: String, dest: String, owner: Option<Owner>, epoch: bool) -> &mut Self {
        let timestamp = if epoch { 0 } else { -1 };
        self.push(on, from as i64, Action::Copy(pb::FileActionCopy { timestamp, ..copy_action(src, dest, owner) }));
        self
    }

    pub fn mkdir(&mut self, on: On, path: String, mode: i32, owner: Option<Owner>) -> &mut Self {
        self.push(on, -1, Action::Mkdir(pb::FileActionMkDir { path, mode, make_parents: true, owner: owner.map(chown), timestamp: 0 }));
        self
    }

    /// A file with fixed content and time (the epoch): its digest is its
    /// content.
    pub fn mkfile(&mut self, on: On, path: String, data: Vec<u8>) -> &mut Self {
        self.push(on, -1, Action::Mkfile(pb::FileActionMkFile { path, mode: 0o644, data, owner: None, timestamp: 0 }));
        self
    }

    /// The op: its last action is the result.
    pub fn finish(mut self, platform: Option<pb::Platform>) -> pb::Op {
        // The engine rejects it ("invalid file op with no actions").
        debug_assert!(!self.actions.is_empty(), "a file op with no actions");
        let n = self.inputs.len();
        for &a in &self.on_previous {
            self.actions[a].input = (n + a - 1) as i64;
        }
        if let Some(last) = self.actions.last_mut() {
            last.output = 0;
        }
        pb::Op { inputs: self.inputs, platform, op: Some(pb::op::Op::File(pb::FileOp { actions: self.actions })), ..Default::default() }
    }
}

pub fn chown(Owner { uid, gid }: Owner) -> pb::ChownOpt {
    use pb::user_opt::User;
    pb::ChownOpt { user: Some(pb::UserOpt { user: Some(User::ById(uid)) }), group: Some(pb::UserOpt { user: Some(User::ById(gid)) }) }
}

fn copy_action(src: String, dest: String, owner: Option<Owner>) -> pb::FileActionCopy {
    pb::FileActionCopy {
        src,
        dest,
        owner: owner.map(chown),
        mode: -1,
        follow_symlink: true,
        dir_copy_contents: true,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: false,
        timestamp: -1,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_rules() {
        let mut f = FileOp::new();
        let a = Output { digest: "sha256:a".into(), index: 0 };
        let src = f.input(&a);
        f.mkdir(On::Scratch, "/app".into(), 0o755, None).copy(On::Previous, src, "/x".into(), "/app/x".into(), None).copy(
            On::Previous,
            src,
            "/y".into(),
            "/app/y".into(),
            None,
        );
        let op = f.finish(None);
        let Some(pb::op::Op::File(fo)) = op.op else { panic!() };
        let idx: Vec<(i64, i64, i64)> = fo.actions.iter().map(|a| (a.input, a.secondary_input, a.output)).collect();
        // scratch; then len(inputs)=1 + action 0; then 1 + action 1
        assert_eq!(idx, [(-1, -1, -1), (1, 0, -1), (2, 0, 0)]);
    }

    /// An input added after actions (a copy from another source) does not
    /// shift what `On::Previous` points at: the first build of fused step
    /// inputs put every copy on the wrong state (npm found no lockfile).
    #[test]
    fn previous_survives_inputs_added_later() {
        let mut f = FileOp::new();
        let base = f.input(&Output { digest: "sha256:base".into(), index: 0 });
        let a = f.input(&Output { digest: "sha256:a".into(), index: 0 });
        f.copy(On::Input(base), a, "/x".into(), "/app/x".into(), None);
        let b = f.input(&Output { digest: "sha256:b".into(), index: 0 });
        f.copy(On::Previous, b, "/y".into(), "/app/y".into(), None);
        let c = f.input(&Output { digest: "sha256:c".into(), index: 0 });
        f.copy(On::Previous, c, "/z".into(), "/app/z".into(), None);
        let op = f.finish(None);
        let Some(pb::op::Op::File(fo)) = op.op else { panic!() };
        let idx: Vec<(i64, i64, i64)> = fo.actions.iter().map(|a| (a.input, a.secondary_input, a.output)).collect();
        // 4 inputs: action 1 works on 4 + 0, action 2 on 4 + 1
        assert_eq!(idx, [(0, 1, -1), (4, 2, -1), (5, 3, 0)]);
    }
}
