//! XML output of the Query protocol: a small writer, the response envelope, and the error
//! document.
//!
//! Every piece of text that reaches the output goes through [`escape`], so the request-id
//! placeholder (which contains `<`) can only appear where [`envelope`] put it.

use coffer_engines::AwsError;

/// IAM's XML namespace.
pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// STS's XML namespace.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Stands for the request id in a response from [`crate::IamEngine::handle`]; the front end
/// replaces it (see [`with_request_id`]). It cannot come from user text, which is escaped.
pub const REQUEST_ID_PLACEHOLDER: &str = "<?coffer-request-id?>";

/// Fills in the request id of a response made by [`crate::IamEngine::handle`].
pub fn with_request_id(body: &str, request_id: &str) -> String {
    body.replacen(REQUEST_ID_PLACEHOLDER, &escape(request_id), 1)
}

/// The namespace of `service` ("iam" or "sts").
pub fn namespace(service: &str) -> &'static str {
    if service == "sts" { STS_NS } else { IAM_NS }
}

/// The Query-protocol error document for `err` and its HTTP status:
/// `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/></ErrorResponse>`.
pub fn error_response(service: &str, err: &AwsError, request_id: &str) -> (u16, String) {
    let status = err.code.status_query();
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{}</RequestId></ErrorResponse>",
        namespace(service),
        escape(err.code.as_str()),
        escape(&err.message),
        escape(request_id),
    );
    (status, body)
}

/// Escapes text for an XML element.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a policy document as IAM returns it (RFC 3986 unreserved characters
/// kept); botocore and the CLI decode it back to JSON.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The whole response: `<{action}Response xmlns><{action}Result>result</..>` (no Result
/// element when `result` is `None`), then `ResponseMetadata` with the request-id placeholder.
pub fn envelope(service: &str, action: &str, result: Option<&str>) -> String {
    let ns = namespace(service);
    let mut out = format!("<{action}Response xmlns=\"{ns}\">");
    if let Some(r) = result {
        out.push_str(&format!("<{action}Result>{r}</{action}Result>"));
    }
    out.push_str(&format!(
        "<ResponseMetadata><RequestId>{REQUEST_ID_PLACEHOLDER}</RequestId></ResponseMetadata></{action}Response>"
    ));
    out
}

/// A tiny XML writer over a `String`.
#[derive(Default)]
pub(crate) struct Xml(String);

impl Xml {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>text</name>`, text escaped.
    pub fn el(&mut self, name: &str, text: &str) -> &mut Self {
        self.0.push_str(&format!("<{name}>{}</{name}>", escape(text)));
        self
    }

    /// [`el`](Self::el) when `text` is present.
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.el(name, t);
        }
        self
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.0.push_str(&format!("<{name}>"));
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.0.push_str(&format!("</{name}>"));
        self
    }

    /// `<name>` with `f`'s content `</name>`.
    pub fn nest(&mut self, name: &str, f: impl FnOnce(&mut Self)) -> &mut Self {
        self.open(name);
        f(self);
        self.close(name)
    }

    /// `<name><member>..</member>...</name>`, each member written by `f`.
    pub fn members<T>(&mut self, name: &str, items: &[T], mut f: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.open(name);
        for it in items {
            self.open("member");
            f(self, it);
            self.close("member");
        }
        self.close(name)
    }

    /// `IsTruncated` and, when truncated, `Marker`.
    pub fn paging(&mut self, next: Option<&str>) -> &mut Self {
        self.el("IsTruncated", if next.is_some() { "true" } else { "false" });
        self.opt("Marker", next)
    }

    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(url_encode("{\"a\": 1}"), "%7B%22a%22%3A%201%7D");
    }

    #[test]
    fn request_id_placeholder_is_replaced_once() {
        let body = envelope("iam", "DeleteUser", None);
        assert!(body.contains(REQUEST_ID_PLACEHOLDER));
        let out = with_request_id(&body, "rid-1");
        assert!(out.contains("<RequestId>rid-1</RequestId>"));
        assert!(!out.contains(REQUEST_ID_PLACEHOLDER));
        // User text can never look like the placeholder.
        assert!(!escape(REQUEST_ID_PLACEHOLDER).contains(REQUEST_ID_PLACEHOLDER));
    }
}
