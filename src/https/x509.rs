//! When a certificate expires: the one fact the site checks read from it that rustls does not
//! expose. A minimal DER walk to `tbsCertificate.validity.notAfter` (RFC 5280 4.1); rustls has
//! already verified the certificate (or was told to accept any), so anything unexpected here is
//! an error, not a guess.

use anyhow::{Context, Result, bail};

/// One DER element: (tag, contents, the bytes after it).
fn element(der: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first().context("truncated DER")?;
    let (&first, rest) = rest.split_first().context("truncated DER")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            bail!("unsupported DER length");
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        bail!("truncated DER");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `notAfter` of a DER certificate, in Unix seconds.
pub fn not_after(der: &[u8]) -> Result<i64> {
    let (tag, cert, _) = element(der)?;
    let (tbs_tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE || tbs_tag != SEQUENCE {
        bail!("not an X.509 certificate");
    }
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer, then validity.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (tag, validity, _) = element(rest)?;
    if tag != SEQUENCE {
        bail!("no validity in the certificate");
    }
    let (_, _, after) = element(validity)?;
    let (tag, time, _) = element(after)?;
    let text = std::str::from_utf8(time).context("a certificate time that is not ASCII")?;
    parse_time(tag, text)
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049, RFC 5280 4.1.2.5.1) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, text: &str) -> Result<i64> {
    let digits = text
        .strip_suffix('Z')
        .context("a certificate time not in UTC")?;
    let num = |s: &str| -> Result<i64> { s.parse().with_context(|| format!("bad time `{text}`")) };
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = num(&digits[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (num(&digits[..4])?, &digits[4..]),
        _ => bail!("unsupported certificate time `{text}`"),
    };
    let (month, day) = (num(&rest[0..2])?, num(&rest[2..4])?);
    let (h, m, s) = (num(&rest[4..6])?, num(&rest[6..8])?, num(&rest[8..10])?);
    Ok(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// Made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
    /// -subj /CN=chat.example.com -days 3650`; `openssl x509 -enddate` says
    /// `notAfter=Nov 24 11:10:05 2036 GMT` = 2111137805.
    const CERT: &str = "MIIBizCCATGgAwIBAgIUENIRvvHE+6R2i3LZ+FmPKaCDHC8wCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQY2hhdC5leGFtcGxlLmNvbTAeFw0yNjExMjcxMTEwMDVaFw0zNjExMjQxMTEwMDVaMBsxGTAXBgNVBAMMEGNoYXQuZXhhbXBsZS5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQelZWXTK/AQYlJJG0yqULIQfflsR2et/CDKFEPzShvA99Qcn2xoJHu4XMN5tqDTV0jYmfsGyAJ/yB1PcdfB2jvo1MwUTAdBgNVHQ4EFgQUW1Pnfo8eR2M2ND3HJBMsGrsLIA4wHwYDVR0jBBgwFoAUW1Pnfo8eR2M2ND3HJBMsGrsLIA4wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAsDePw+OhvHPrtvya8SmWNQHTZuuzAjXoDdOc6/MdoiwIhAK+osCUFDV1Nkm4YUzraKXOOt7XvldAhWwsOOcpasrcw";

    #[test]
    fn reads_not_after() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(CERT)
            .unwrap();
        assert_eq!(not_after(&der).unwrap(), 2_111_137_805);
        assert!(not_after(&der[..40]).is_err());
        assert!(not_after(b"\x02\x01\x00").is_err());
    }

    #[test]
    fn both_time_forms() {
        assert_eq!(parse_time(UTC_TIME, "700101000000Z").unwrap(), 0);
        assert_eq!(
            parse_time(UTC_TIME, "491231235959Z").unwrap(),
            2_524_607_999
        );
        assert_eq!(
            parse_time(GENERALIZED_TIME, "20500101000000Z").unwrap(),
            2_524_608_000
        );
        assert!(parse_time(UTC_TIME, "700101000000+0100").is_err());
    }
}
