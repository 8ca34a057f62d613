//! MCP hot paths, each beside a baseline in the same run: parsing a `tools/call` line into a
//! `Message` (vs `serde_json` to a bare `Value`), writing a response line, checking arguments
//! against a tool's schema, and a full in-process `tools/call daemon info` / `ping` through a
//! `Session` (no sockets, no threads).

use std::sync::Arc;

use agnt::{
    host::Host,
    mcp::{
        Session, Toolbox,
        jsonrpc::{Message, Request, Response},
    },
    tools,
};
use divan::{Bencher, black_box};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"proc","arguments":{"action":"output","process_id":"dev","grep":"error","tail":20},"_meta":{"dev.agnt/project":"/home/me/app"}}}"#;

#[divan::bench]
fn parse_baseline_serde_value() -> Value {
    serde_json::from_slice(black_box(CALL)).unwrap()
}

#[divan::bench]
fn parse_message() -> Message {
    Message::parse_line(black_box(CALL)).unwrap()
}

#[divan::bench]
fn write_response_line(b: Bencher<'_, '_>) {
    let msg: Message = Response::ok(
        42.into(),
        json!({"content": [{"type": "text", "text": "x".repeat(200)}], "isError": false}),
    )
    .into();
    let mut buf = Vec::with_capacity(1024);
    b.bench_local(|| {
        buf.clear();
        black_box(&msg).write(&mut buf).unwrap();
    });
}

#[divan::bench]
fn check_args_proc(b: Bencher<'_, '_>) {
    let tool = tools::find("proc").unwrap();
    let args = json!({"action": "output", "process_id": "dev", "grep": "error", "tail": 20});
    let args = args.as_object().unwrap().clone();
    b.bench_local(|| {
        tools::check_args(tool.name, tools::input_schema_of(tool), black_box(&args)).unwrap()
    });
}

fn session() -> Session {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::mem::forget(rx);
    Session::new(Arc::new(Toolbox::in_process(Host::for_tests())), tx)
}

#[divan::bench]
fn session_ping(b: Bencher<'_, '_>) {
    let s = session();
    b.bench_local(|| {
        s.handle_sync(Request {
            id: 1.into(),
            method: "ping".into(),
            params: Value::Null,
        })
    });
}

#[divan::bench]
fn session_tools_call_daemon_info(b: Bencher<'_, '_>) {
    let s = Arc::new(session());
    let params = json!({"name": "daemon", "arguments": {"action": "info"}});
    b.bench_local(|| {
        s.handle_sync(Request {
            id: 1.into(),
            method: "tools/call".into(),
            params: params.clone(),
        })
    });
}
