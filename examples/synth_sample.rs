//! Writes a sample world and prints how long generation took:
//! `cargo run --example synth_sample -- SEED CUSTOMERS PAYMENTS DIR`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let config =
        cashmatch::synth::SynthConfig::new(arg(1, 7), arg(2, 200) as usize, arg(3, 2_000) as usize);
    let t = std::time::Instant::now();
    let w = cashmatch::synth::generate(&config);
    println!(
        "generated in {:.2?}: {} customers, ledgers {} / {} items, {} payments",
        t.elapsed(),
        w.customers.len(),
        w.train.invoices.len(),
        w.test.invoices.len(),
        w.train.payments.len() + w.test.payments.len()
    );
    if let Some(dir) = args.get(4) {
        let t = std::time::Instant::now();
        cashmatch::synth::write_world(&w, dir).unwrap();
        println!("written in {:.2?}", t.elapsed());
        let t = std::time::Instant::now();
        let path = std::path::Path::new(dir).join("train/invoices.csv");
        let loaded = cashmatch::io::read_invoices(&path).unwrap();
        println!(
            "read {} invoices back in {:.2?} ({} errors)",
            loaded.rows.len(),
            t.elapsed(),
            loaded.errors.len()
        );
        let t = std::time::Instant::now();
        let mut n = 0;
        let file =
            std::fs::File::open(std::path::Path::new(dir).join("train/remittances.csv")).unwrap();
        cashmatch::io::for_each_remittance(std::io::BufReader::new(file), "remittances.csv", |p| {
            n += usize::from(p.is_ok());
        })
        .unwrap();
        println!("streamed {n} payments in {:.2?}", t.elapsed());
    }
}
