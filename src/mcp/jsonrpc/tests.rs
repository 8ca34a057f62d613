//! Unit tests of the JSON-RPC layer: message classification, malformed lines, round trips,
//! the line reader's limits, and the IO threads' bounded join.

use super::*;

fn parse(s: &str) -> Result<Message, Response> {
    Message::parse_line(s.as_bytes())
}

#[test]
fn classifies_messages() {
    let m = parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
    assert_eq!(
        m,
        Message::Request(Request {
            id: 1.into(),
            method: "ping".into(),
            params: Value::Null
        })
    );
    let m = parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
    assert!(matches!(m, Message::Notification(n) if n.method == "notifications/initialized"));
    let m = parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
    assert!(matches!(
        m,
        Message::Response(Response {
            id: Some(RequestId::Str(_)),
            outcome: Ok(_)
        })
    ));
    let m = parse(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"x"}}"#).unwrap();
    assert!(matches!(
        m,
        Message::Response(Response {
            outcome: Err(ResponseError { code: -1, .. }),
            ..
        })
    ));
}

#[test]
fn rejects_malformed() {
    for (line, want) in [
        ("{", code::PARSE_ERROR),
        ("nonsense", code::PARSE_ERROR),
        ("[1,2]", code::INVALID_REQUEST),
        ("42", code::INVALID_REQUEST),
        (r#"{"id":1}"#, code::INVALID_REQUEST),
        (r#"{"id":{},"method":"x"}"#, code::INVALID_REQUEST),
        (r#"{"id":1,"method":7}"#, code::INVALID_REQUEST),
        (r#"{"id":1,"method":"x","params":3}"#, code::INVALID_REQUEST),
        (r#"{"id":null,"method":"x"}"#, code::INVALID_REQUEST),
    ] {
        let err = parse(line).unwrap_err();
        assert_eq!(err.outcome.unwrap_err().code, want, "{line}");
    }
    let err = Message::parse_line(b"{\"a\":\"\xff\"}").unwrap_err();
    assert_eq!(err.outcome.unwrap_err().code, code::PARSE_ERROR);
}

#[test]
fn round_trips() {
    let msgs = [
        Message::Request(Request {
            id: "x".to_string().into(),
            method: "m".into(),
            params: json!({"a": 1}),
        }),
        Message::Notification(Notification {
            method: "n".into(),
            params: Value::Null,
        }),
        Response::ok(5.into(), json!([1])).into(),
        Response::err(None, code::PARSE_ERROR, "bad").into(),
    ];
    for m in msgs {
        let mut buf = Vec::new();
        m.write(&mut buf).unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        let back = Message::parse_line(&buf[..buf.len() - 1]);
        match (&m, back) {
            (Message::Response(Response { id: None, .. }), Ok(Message::Response(r))) => {
                assert!(r.id.is_none())
            }
            (_, Ok(b)) => assert_eq!(m, b),
            (_, Err(e)) => panic!("{e:?}"),
        }
    }
}

#[test]
fn line_reader_limits_and_skips() {
    let mut data = Vec::new();
    data.extend_from_slice(b"abc\n\n  \r\n");
    data.extend(std::iter::repeat_n(b'x', 100));
    data.extend_from_slice(b"\nlast");
    let mut r = LineReader::new(&data[..], 10);
    assert!(matches!(r.next_frame().unwrap(), Frame::Line(l) if l == b"abc"));
    assert!(matches!(r.next_frame().unwrap(), Frame::TooLong(100)));
    assert!(matches!(r.next_frame().unwrap(), Frame::Line(l) if l == b"last"));
    assert!(matches!(r.next_frame().unwrap(), Frame::Eof));
}

#[test]
fn server_side_answers_bad_lines_and_keeps_going() {
    let input = b"not json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n".to_vec();
    let (out_tx, out_rx) = unbounded::<Vec<u8>>();
    struct ChanWriter(Sender<Vec<u8>>);
    impl Write for ChanWriter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (conn, threads) = Connection::from_io(
        "t",
        io::Cursor::new(input),
        ChanWriter(out_tx),
        Side::Server,
    );
    let msg = conn.receiver.recv().unwrap();
    assert!(matches!(msg, Message::Request(r) if r.method == "ping"));
    let line = out_rx.recv().unwrap();
    let v: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["error"]["code"], code::PARSE_ERROR);
    assert!(v["id"].is_null());
    drop(conn);
    threads.join().unwrap();
}

#[test]
fn memory_pair_is_connected() {
    let (a, b) = Connection::memory();
    a.sender
        .send(
            Notification {
                method: "x".into(),
                params: Value::Null,
            }
            .into(),
        )
        .unwrap();
    assert!(matches!(
        b.receiver.recv().unwrap(),
        Message::Notification(_)
    ));
    b.sender
        .send(Response::ok(1.into(), Value::Null).into())
        .unwrap();
    assert!(matches!(a.receiver.recv().unwrap(), Message::Response(_)));
}

#[test]
fn join_within_gives_up_on_a_writer_whose_sender_is_held() {
    let (ours, peer) = UnixStream::pair().unwrap();
    let (conn, threads) = Connection::unix(ours, Side::Server).unwrap();
    // A call stuck past its cancel: it keeps a sender, so the writer never ends by itself.
    let stuck = conn.sender.clone();
    drop(conn);
    drop(peer);
    let err = threads
        .join_within(Duration::from_millis(100))
        .expect_err("the held sender keeps the writer alive");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    drop(stuck);
}

#[test]
fn join_within_waits_for_a_writer_that_ends() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let (conn, threads) = Connection::unix(ours, Side::Server).unwrap();
    conn.sender
        .send(Message::Notification(Notification {
            method: "bye".into(),
            params: Value::Null,
        }))
        .unwrap();
    drop(conn);
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    threads.join_within(Duration::from_secs(10)).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut peer, &mut got).unwrap();
    assert!(got.contains("\"bye\""), "{got}");
}
