//! Which call a `functionResponse` answers, when the app named it with an
//! id of its own.

use super::*;

/// (id, name) of calls, and of results (whose name may be unknown).
type Ids<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, Option<&'a str>)>);

/// The (id, name) of each call, and of each result, in a request's IR.
fn ids(req: &ChatRequest) -> Ids<'_> {
    let mut calls = vec![];
    let mut results = vec![];
    for p in req.messages.iter().flat_map(|m| &m.content) {
        match p {
            Part::ToolCall { id, name, .. } => calls.push((id.as_str(), name.as_str())),
            Part::ToolResult { id, name, .. } => results.push((id.as_str(), name.as_deref())),
            _ => {}
        }
    }
    (calls, results)
}

/// Gemini CLI: the model's calls came without ids, and the CLI answers them
/// with ids of its own making (`name-timestamp-random`). Each answers the
/// pending call of its name, in order, so an Anthropic provider sees every
/// `tool_result` paired with its `tool_use`.
#[test]
fn gemini_cli_response_ids_answer_the_pending_calls_of_their_name() {
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "Read a.txt and b.txt, then list."}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}},
            {"functionCall": {"name": "read_file", "args": {"path": "b.txt"}}},
            {"functionCall": {"name": "list_directory", "args": {}}}
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "read_file-1760000000000-4f9c2d", "name": "read_file", "response": {"output": "A"}}},
            {"functionResponse": {"id": "read_file-1760000000001-8a1b3e", "name": "read_file", "response": {"output": "B"}}},
            {"functionResponse": {"id": "list_directory-1760000000002-c7d5f0", "name": "list_directory", "response": {"output": "a.txt b.txt"}}}
        ]}
    ]});
    let mut req = decode_request(body.to_string().as_bytes(), "claude-sonnet-4-5", false).unwrap();
    assert_eq!(
        ids(&req),
        (
            vec![
                ("call_0", "read_file"),
                ("call_1", "read_file"),
                ("call_2", "list_directory")
            ],
            vec![
                ("call_0", Some("read_file")),
                ("call_1", Some("read_file")),
                ("call_2", Some("list_directory"))
            ]
        )
    );
    let a = anthropic::encode_request(&mut req).unwrap();
    let used: Vec<&Value> = a["messages"][1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["id"])
        .collect();
    let answered: Vec<&Value> = a["messages"][2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["tool_use_id"])
        .collect();
    assert_eq!(used, answered);
}

/// An id a call has is kept, whatever the pending calls; an unknown id with
/// no pending call of its name stays as the app sent it.
#[test]
fn known_response_ids_are_kept() {
    let body = json!({"contents": [
        {"role": "model", "parts": [
            {"functionCall": {"id": "c-1", "name": "f", "args": {}}},
            {"functionCall": {"id": "c-2", "name": "f", "args": {}}}
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "c-2", "name": "f", "response": {}}},
            {"functionResponse": {"id": "c-1", "name": "f", "response": {}}},
            {"functionResponse": {"id": "g-1", "name": "g", "response": {}}}
        ]}
    ]});
    let req = decode_request(body.to_string().as_bytes(), "m", false).unwrap();
    assert_eq!(
        ids(&req).1,
        [("c-2", Some("f")), ("c-1", Some("f")), ("g-1", Some("g"))]
    );
}
