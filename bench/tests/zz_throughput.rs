mod support;
use support::{Behavior, TestServer};
#[test]
fn throughput() {
    let server = TestServer::start(Behavior::Fast);
    let url = server.url();
    for args in [
        vec!["--connections", "32"],
        vec!["--rate", "20000"],
        vec!["--rate", "30000"],
    ] {
        let out = std::env::temp_dir().join("hj-tp");
        let mut argv = vec!["bench", "run", "--target", &url, "--scenario", "userinfo", "--duration", "5s", "--warmup", "1s", "--users", "50", "--out", out.to_str().unwrap(), "--quiet"];
        argv.extend(args.iter().copied());
        let m = hellojohn_bench::command().try_get_matches_from(argv).unwrap();
        let t = std::time::Instant::now();
        let _ = hellojohn_bench::main(&m);
        eprintln!("{args:?} took {:?}", t.elapsed());
    }
}
