use super::*;
use crate::runtime::FakeRuntime;

fn router(dir: &std::path::Path, history: usize) -> LogRouter {
    let config = LogConfig { dir: dir.to_path_buf(), history, drain_buffer: 100, drain_roots: Vec::new(), outbound: Default::default() };
    let known = crate::known::KnownApps::default();
    known.insert("shop");
    LogRouter::new(config, Arc::new(FakeRuntime::new()), known).unwrap()
}

#[tokio::test]
async fn an_app_that_does_not_exist_gets_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = router(dir.path(), 10);
    logs.event("ghost", "router", "at=info status=404");
    assert!(logs.history("ghost", &Filter::default(), 10).is_empty());
    assert!(logs.tail("ghost", Filter::default(), 10, None, false).next().await.is_none());
    logs.close();
    assert!(!dir.path().join("ghost.log").exists(), "no journal for a name nobody created");
    assert!(logs.inner.apps.lock().unwrap().get("ghost").is_none());
}

#[test]
fn lines_print_as_heroku_prints_them() {
    let line = LogLine { seq: 1, at_ns: 1_795_341_600_000_000_000, source: Source::App, dyno: "web.1".into(), text: "hi".into(), stderr: false, cache: Default::default() };
    assert_eq!(line.heroku(), "2026-11-22T10:00:00.000000+00:00 app[web.1]: hi");
}

#[test]
fn filters_by_process_type_dyno_and_source() {
    let line = |dyno: &str, source| LogLine { seq: 1, at_ns: 0, source, dyno: dyno.into(), text: String::new(), stderr: false, cache: Default::default() };
    let web = Filter { ps: Some("web".into()), source: None };
    assert!(web.matches(&line("web.1", Source::App)));
    assert!(web.matches(&line("web.12", Source::Paas)));
    assert!(!web.matches(&line("webhook.1", Source::App)));
    assert!(!web.matches(&line("worker.1", Source::App)));
    let one = Filter { ps: Some("web.1".into()), source: Some(Source::App) };
    assert!(one.matches(&line("web.1", Source::App)));
    assert!(!one.matches(&line("web.12", Source::App)));
    assert!(!one.matches(&line("web.1", Source::Paas)));
}

#[tokio::test]
async fn history_is_bounded_and_survives_a_restart_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    {
        let logs = router(dir.path(), 10);
        for i in 0..35 {
            logs.say("shop", Source::App, "web.1", format!("line {i}"));
        }
        let h = logs.history("shop", &Filter::default(), 100);
        assert_eq!(h.len(), 10, "history keeps the newest lines only");
        assert_eq!(h[0].text, "line 25");
        assert_eq!(h[9].seq, 35);
        logs.close();
    }
    let lines = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap().lines().count();
    // 35 lines in segments of 10 (and a cursor record each but the first).
    assert_eq!((lines("shop.log.1"), lines("shop.log")), (11, 6), "two segments of at most the history each");
    let logs = router(dir.path(), 10);
    let h = logs.history("shop", &Filter::default(), 100);
    assert_eq!(h.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().first(), Some(&"line 25"));
    logs.say("shop", Source::Paas, "api", "after");
    let h = logs.history("shop", &Filter::default(), 2);
    assert_eq!((h[0].seq, h[1].seq), (35, 36), "numbers go on after a restart");
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_told_how_many_lines_it_lost_and_others_are_not_slowed() {
    let dir = tempfile::tempdir().unwrap();
    let logs = router(dir.path(), 100);
    let mut slow = logs.tail("shop", Filter::default(), 0, None, true);
    let mut fast = logs.tail("shop", Filter::default(), 0, None, true);
    let total = TAIL_BUFFER + 500;
    let mut got_fast = 0;
    for i in 0..total {
        logs.say("shop", Source::App, "web.1", format!("{i}"));
        // The fast reader keeps up; the slow one reads nothing meanwhile.
        let line = fast.next().await.unwrap();
        assert_eq!(line.text, format!("{i}"));
        got_fast += 1;
    }
    assert_eq!(got_fast, total);
    let first = slow.next().await.unwrap();
    assert_eq!(first.seq, 0);
    assert!(first.text.starts_with("Error L10 (output buffer overflow): 500 messages dropped"), "{}", first.text);
    let next = slow.next().await.unwrap();
    assert_eq!(next.text, "500", "then the lines still held, in order");
}

#[tokio::test]
async fn a_reader_resumes_after_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let logs = router(dir.path(), 5);
    for i in 1..=8 {
        logs.say("shop", Source::App, "web.1", format!("{i}"));
    }
    let mut t = logs.tail("shop", Filter::default(), 100, Some(6), false);
    assert_eq!(t.next().await.unwrap().seq, 7);
    assert_eq!(t.next().await.unwrap().seq, 8);
    assert!(t.next().await.is_none());
    let mut old = logs.tail("shop", Filter::default(), 100, Some(1), false);
    let notice = old.next().await.unwrap();
    assert!(notice.text.contains("2 lines after #1 are no longer held"), "{}", notice.text);
    assert_eq!(old.next().await.unwrap().seq, 4);
}

#[tokio::test]
async fn long_lines_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let logs = router(dir.path(), 5);
    logs.say("shop", Source::App, "web.1", "é".repeat(MAX_LINE_BYTES));
    let h = logs.history("shop", &Filter::default(), 1);
    assert!(h[0].text.len() <= MAX_LINE_BYTES);
}

fn app_line(dyno: &str, text: &str) -> LogLine {
    LogLine { seq: 0, at_ns: now_ns(), source: Source::App, dyno: dyno.into(), text: text.into(), stderr: false, cache: Default::default() }
}

#[tokio::test]
async fn lines_that_come_together_are_encoded_once_for_every_plain_tail() {
    let dir = tempfile::tempdir().unwrap();
    let logs = router(dir.path(), 100);
    logs.say("shop", Source::App, "web.1", "before");
    let mut a = logs.tail("shop", Filter::default(), 1, None, true);
    let mut b = logs.tail("shop", Filter::default(), 0, None, true);
    let mut web = logs.tail("shop", Filter { ps: Some("web".into()), source: None }, 0, None, true);
    let mut web_too = logs.tail("shop", Filter { ps: Some("web".into()), source: None }, 0, None, true);
    logs.push_lines("shop", vec![app_line("web.1", "one"), app_line("worker.1", "two"), app_line("web.1", "three")], None);
    // The history first, then the batch.
    assert!(String::from_utf8_lossy(&a.next_chunk(512).await.unwrap()).ends_with("app[web.1]: before\n"));
    let (ca, cb) = (a.next_chunk(512).await.unwrap(), b.next_chunk(512).await.unwrap());
    assert_eq!(ca, cb);
    assert_eq!(ca.as_ptr(), cb.as_ptr(), "both tails write the one encoding");
    let text = String::from_utf8_lossy(&ca).into_owned();
    assert_eq!(text.lines().map(|l| l.split_once(' ').unwrap().1).collect::<Vec<_>>(), ["app[web.1]: one", "app[worker.1]: two", "app[web.1]: three"]);
    // A filtered tail gets its lines only, encoded once for every tail with that filter.
    let (only, only_too) = (web.next_chunk(512).await.unwrap(), web_too.next_chunk(512).await.unwrap());
    assert_eq!(only.as_ptr(), only_too.as_ptr());
    let only = String::from_utf8_lossy(&only).into_owned();
    assert_eq!(only.lines().count(), 2, "{only}");
    assert!(!only.contains("worker.1"));
}

#[tokio::test]
async fn a_chunk_reader_that_falls_behind_batches_is_told_how_many_lines_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let logs = router(dir.path(), 100);
    let mut slow = logs.tail("shop", Filter::default(), 0, None, true);
    // Batches of three lines: the reader loses the oldest 10 batches (30 lines).
    for i in 0..TAIL_BUFFER + 10 {
        logs.push_lines("shop", (0..3).map(|j| app_line("web.1", &format!("{i}.{j}"))).collect::<Vec<_>>(), None);
    }
    let mut text = String::new();
    while text.lines().count() < 1 + 3 * TAIL_BUFFER {
        let chunk = slow.next_chunk(512).await.unwrap();
        assert!(chunk.len() < 512 * 64, "a chunk holds about 512 lines at most");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut lines = text.lines().map(|l| l.split_once(' ').unwrap().1);
    let notice = lines.next().unwrap();
    assert!(notice.starts_with("paas[logs]: Error L10 (output buffer overflow): 30 messages dropped"), "{notice}");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 3 * TAIL_BUFFER, "then every line still held");
    assert_eq!(rest[0], "app[web.1]: 10.0");
    assert_eq!(rest[rest.len() - 1], format!("app[web.1]: {}.2", TAIL_BUFFER + 9));
}

#[test]
fn a_batch_tells_a_reader_what_it_lost_and_what_it_has_not_had() {
    let lines: Vec<Arc<LogLine>> = (5..=8).map(|seq| Arc::new(LogLine { seq, ..app_line("web.1", "x") })).collect();
    let batch = Batch::new(lines);
    let seqs = |l: &[Arc<LogLine>]| l.iter().map(|l| l.seq).collect::<Vec<_>>();
    let (lost, fresh) = batch.after(4);
    assert_eq!((lost, seqs(fresh)), (0, vec![5, 6, 7, 8]), "caught up");
    let (lost, fresh) = batch.after(1);
    assert_eq!((lost, seqs(fresh)), (3, vec![5, 6, 7, 8]), "lines 2 to 4 lost");
    let (lost, fresh) = batch.after(6);
    assert_eq!((lost, seqs(fresh)), (0, vec![7, 8]), "5 and 6 already had");
    let (lost, fresh) = batch.after(9);
    assert_eq!((lost, fresh.len()), (0, 0), "had it all");
}
