//! The bare-HTTP ceiling: an axum server that answers every `POST /` with a fixed JSON body
//! of about 200 bytes, the size of a small `GetSecretValue` answer. Whatever Coffer does beyond
//! HTTP shows up as the gap between its numbers and this server's, measured in the same run.

use axum::Router;
use axum::http::header;
use axum::routing::post;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Address to listen on; the bound address is printed as `listening on ADDR`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

const BODY: &str = r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/secret-abcdef","Name":"bench/secret","VersionId":"11111111-2222-3333-4444-555555555555","SecretString":"baseline","VersionStages":["AWSCURRENT"],"CreatedDate":1.7e9}"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = Router::new().route(
        "/",
        post(|| async { ([(header::CONTENT_TYPE, "application/x-amz-json-1.1")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
