//! `kms-client`: see `kms_client::cli`.

#[tokio::main]
async fn main() {
    let mut out = std::io::stdout().lock();
    if let Err(e) = kms_client::cli::run(std::env::args(), &mut out).await {
        // clap errors print their own usage text.
        match e.downcast_ref::<clap::Error>() {
            Some(c) => c.exit(),
            None => {
                eprintln!("kms-client: {e:#}");
                std::process::exit(1);
            }
        }
    }
}
