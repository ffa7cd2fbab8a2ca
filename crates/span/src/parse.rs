//! SPAN 4 XML into [`SpanFile`], with every failure located by element path.
//!
//! The parser reads what margin and regeneration need and ignores the rest (definitions of
//! account types, currencies' display names, venues). Unknown elements are not errors: clearing
//! houses add their own, and SPAN readers are expected to skip them.

use pricing::OptionRight;
use roxmltree::{Document, Node};

use crate::error::{Error, ErrorKind};
use crate::file::{
    ChargeMethod, CombinedCommodity, Contract, ContractRef, DeltaPoint, DeltaSpread, Exchange,
    LegSide, OptionContract, OptionProduct, OptionSeries, PriceModel, Product, ProductKind,
    RiskArray, SCENARIO_COUNT, ScanPoint, SpanFile, SpreadLeg, Tier,
};

/// Largest SPAN file accepted, in bytes: real files are a few megabytes; beyond this an input is
/// not a risk-parameter file.
pub const FILE_SIZE_MAX_BYTES: usize = 512 * 1024 * 1024;

/// Decodes the bytes by the XML declaration's encoding (ISO-8859-1, as CME and Takasbank
/// publish, or UTF-8) and parses them.
///
/// # Errors
/// `Syntax` for bytes that are not well-formed XML in the declared encoding; `Missing`,
/// `Invalid`, `Unresolved` naming the element otherwise.
pub fn parse_bytes(bytes: &[u8]) -> Result<SpanFile, Error> {
    if bytes.len() > FILE_SIZE_MAX_BYTES {
        let why = format!("{} bytes, more than {FILE_SIZE_MAX_BYTES}", bytes.len());
        return Err(Error::invalid("spanFile", why));
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    let declaration = head.split("?>").next().unwrap_or("");
    let latin1 = ["iso-8859-1", "iso8859-1", "latin1", "latin-1"]
        .iter()
        .any(|name| declaration.contains(name));
    // ISO-8859-1 maps each byte to the code point of the same number.
    let text = if latin1 {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::new("spanFile", ErrorKind::Syntax(format!("not UTF-8: {e}"))))?
    };
    parse_str(&text)
}

/// Parses the text of a SPAN file.
///
/// # Errors
/// As [`parse_bytes`].
pub fn parse_str(xml: &str) -> Result<SpanFile, Error> {
    let doc = Document::parse(xml)
        .map_err(|e| Error::new("spanFile", ErrorKind::Syntax(e.to_string())))?;
    let root = doc.root_element();
    if root.tag_name().name() != "spanFile" {
        let why = format!("the root element is <{}>, not <spanFile>", root.tag_name().name());
        return Err(Error::invalid("spanFile", why));
    }
    let created = optional_text(root, "created").unwrap_or_default();
    let pit = child(root, "pointInTime", "spanFile")?;
    let business_date = text(pit, "date", "pointInTime")?.to_string();
    let org = child(pit, "clearingOrg", "pointInTime")?;
    let path = "clearingOrg";
    let clearing_org = text(org, "ec", path)?.to_string();
    let (scan_points, delta_points) = points(org)?;
    let mut currency_conversions = Vec::new();
    for conv in children(org, "curConv") {
        let p = "clearingOrg/curConv";
        let from = text(conv, "fromCur", p)?.to_string();
        currency_conversions.push((
            from,
            text(conv, "toCur", p)?.to_string(),
            num(conv, "factor", p)?,
        ));
    }
    let mut exchanges = Vec::new();
    for exch in children(org, "exchange") {
        exchanges.push(exchange(exch)?);
    }
    let mut combined = Vec::new();
    for cc in children(org, "ccDef") {
        combined.push(combined_commodity(cc)?);
    }
    let mut inter_spreads = Vec::new();
    if let Some(inter) = children(org, "interSpreads").next() {
        for s in children(inter, "dSpread") {
            inter_spreads.push(delta_spread(s, "clearingOrg/interSpreads")?);
        }
    }
    Ok(SpanFile {
        created,
        business_date,
        clearing_org,
        scan_points,
        delta_points,
        currency_conversions,
        exchanges,
        combined,
        inter_spreads,
    })
}

/// The scan and delta points of risk-array set 1 (`pointDef` with `r` = 1).
fn points(org: Node) -> Result<(Vec<ScanPoint>, Vec<DeltaPoint>), Error> {
    let path = "clearingOrg/pointDef";
    let def = children(org, "pointDef")
        .find(|d| optional_text(*d, "r").is_none_or(|r| r == "1"))
        .ok_or_else(|| Error::new(path, ErrorKind::Missing))?;
    let mut scan = Vec::new();
    let mut paired_numbers = Vec::new();
    for (i, p) in children(def, "scanPointDef").enumerate() {
        let at = format!("{path}/scanPointDef[{}]", i + 1);
        let number = int(p, "point", &at)?;
        if number != i as u64 + 1 {
            return Err(Error::invalid(format!("{at}/point"), "points must be numbered 1, 2, ..."));
        }
        let (price_mult, vol_mult) = moves(p, &at)?;
        let weight = num(p, "weight", &at)?;
        paired_numbers.push((at.clone(), int(p, "pairedPoint", &at)?));
        scan.push(ScanPoint { price_mult, vol_mult, weight, paired: 0 });
    }
    if scan.len() != SCENARIO_COUNT {
        let why = format!("{} scan points, SPAN arrays have {SCENARIO_COUNT}", scan.len());
        return Err(Error::invalid(path, why));
    }
    for (point, (at, paired)) in scan.iter_mut().zip(paired_numbers) {
        if !(1..=SCENARIO_COUNT as u64).contains(&paired) {
            return Err(Error::invalid(format!("{at}/pairedPoint"), "not a scan point number"));
        }
        point.paired = paired as usize - 1;
    }
    let mut delta = Vec::new();
    for (i, p) in children(def, "deltaPointDef").enumerate() {
        let at = format!("{path}/deltaPointDef[{}]", i + 1);
        let (price_mult, vol_mult) = moves(p, &at)?;
        delta.push(DeltaPoint { price_mult, vol_mult, weight: num(p, "weight", &at)? });
    }
    if delta.is_empty() {
        return Err(Error::new(format!("{path}/deltaPointDef"), ErrorKind::Missing));
    }
    Ok((scan, delta))
}

fn moves(point: Node, at: &str) -> Result<(f64, f64), Error> {
    let price = child(point, "priceScanDef", at)?;
    let vol = child(point, "volScanDef", at)?;
    let price_mult = num(price, "mult", &format!("{at}/priceScanDef"))?;
    Ok((price_mult, num(vol, "mult", &format!("{at}/volScanDef"))?))
}

fn exchange(exch: Node) -> Result<Exchange, Error> {
    let code = text(exch, "exch", "clearingOrg/exchange")?.to_string();
    let path = format!("clearingOrg/exchange[{code}]");
    let mut physicals = Vec::new();
    for pf in children(exch, "phyPf") {
        physicals.push(product(pf, "phy", &path)?);
    }
    let mut futures = Vec::new();
    for pf in children(exch, "futPf") {
        futures.push(product(pf, "fut", &path)?);
    }
    let mut options = Vec::new();
    for pf in children(exch, "oopPf") {
        options.push(option_product(pf, &path)?);
    }
    Ok(Exchange { code, physicals, futures, options })
}

fn product(pf: Node, contract_tag: &'static str, parent: &str) -> Result<Product, Error> {
    let kind = pf.tag_name().name();
    let id = int(pf, "pfId", &format!("{parent}/{kind}"))?;
    let path = format!("{parent}/{kind}[{id}]");
    let code = text(pf, "pfCode", &path)?.to_string();
    let currency = text(pf, "currency", &path)?.to_string();
    let mut contracts = Vec::new();
    for c in children(pf, contract_tag) {
        let cid = int(c, "cId", &format!("{path}/{contract_tag}"))?;
        let at = format!("{path}/{contract_tag}[{cid}]");
        contracts.push(Contract {
            id: cid,
            period: text(c, "pe", &at)?.to_string(),
            price: num(c, "p", &at)?,
            value: optional_num(c, "val", &at)?,
            value_factor: positive(c, "cvf", &at)?,
            delta_scale: optional_num(c, "sc", &at)?.unwrap_or(1.0),
            years: optional_num(c, "t", &at)?,
            price_scan: scan_rate(c, &at)?.0,
            risk: risk_array(c, &at)?,
        });
    }
    let cash_settled = optional_text(pf, "setlMeth").as_deref() == Some("CASH");
    Ok(Product { id, code, currency, cash_settled, contracts })
}

fn option_product(pf: Node, parent: &str) -> Result<OptionProduct, Error> {
    let id = int(pf, "pfId", &format!("{parent}/oopPf"))?;
    let path = format!("{parent}/oopPf[{id}]");
    let model = match text(pf, "priceModel", &path)? {
        "M" => PriceModel::Merton,
        "B" => PriceModel::Black,
        other => {
            let why = format!("price model {other:?}; known: M (Merton), B (Black-76)");
            return Err(Error::new(format!("{path}/priceModel"), ErrorKind::Unsupported(why)));
        }
    };
    let mut series = Vec::new();
    for s in children(pf, "series") {
        series.push(option_series(s, &path)?);
    }
    Ok(OptionProduct {
        id,
        code: text(pf, "pfCode", &path)?.to_string(),
        currency: text(pf, "currency", &path)?.to_string(),
        model,
        european: text(pf, "exercise", &path)? == "EURO",
        series,
    })
}

fn option_series(s: Node, parent: &str) -> Result<OptionSeries, Error> {
    let period = text(s, "pe", &format!("{parent}/series"))?.to_string();
    let path = format!("{parent}/series[{period}]");
    let und = child(s, "undC", &path)?;
    let und_path = format!("{path}/undC");
    let underlying = ContractRef {
        exchange: text(und, "exch", &und_path)?.to_string(),
        product_id: int(und, "pfId", &und_path)?,
        contract_id: int(und, "cId", &und_path)?,
    };
    let (price_scan, vol_scan_fraction, vol_scan_absolute) = scan_rate(s, &path)?;
    let rate = num(child(s, "intrRate", &path)?, "val", &format!("{path}/intrRate"))?;
    let dividend = match children(s, "divRate").next() {
        Some(d) => num(d, "val", &format!("{path}/divRate"))?,
        None => 0.0,
    };
    let mut options = Vec::new();
    for o in children(s, "opt") {
        options.push(option(o, &path)?);
    }
    Ok(OptionSeries {
        period,
        years: non_negative(s, "t", &path)?,
        value_factor: positive(s, "cvf", &path)?,
        strike_factor: optional_num(s, "svf", &path)?.unwrap_or(1.0),
        delta_scale: optional_num(s, "sc", &path)?.unwrap_or(1.0),
        rate,
        dividend,
        price_scan,
        vol_scan_fraction,
        vol_scan_absolute,
        underlying,
        options,
    })
}

fn option(o: Node, parent: &str) -> Result<OptionContract, Error> {
    let id = int(o, "cId", &format!("{parent}/opt"))?;
    let path = format!("{parent}/opt[{id}]");
    let right = match text(o, "o", &path)? {
        "C" => OptionRight::Call,
        "P" => OptionRight::Put,
        other => return Err(Error::invalid(format!("{path}/o"), format!("{other:?}, not C or P"))),
    };
    Ok(OptionContract {
        id,
        right,
        strike: positive(o, "k", &path)?,
        price: num(o, "p", &path)?,
        vol: non_negative(o, "v", &path)?,
        risk: risk_array(o, &path)?,
    })
}

/// The price scan range and the vol scan range (relative, absolute) of risk-array set 1.
fn scan_rate(c: Node, path: &str) -> Result<(f64, Option<f64>, Option<f64>), Error> {
    let rate = children(c, "scanRate")
        .find(|r| optional_text(*r, "r").is_none_or(|r| r == "1"))
        .ok_or_else(|| Error::new(format!("{path}/scanRate"), ErrorKind::Missing))?;
    let at = format!("{path}/scanRate");
    Ok((
        non_negative(rate, "priceScan", &at)?,
        optional_num(rate, "volScanPct", &at)?,
        optional_num(rate, "volScan", &at)?,
    ))
}

fn risk_array(c: Node, path: &str) -> Result<RiskArray, Error> {
    let ra = children(c, "ra")
        .find(|r| optional_text(*r, "r").is_none_or(|r| r == "1"))
        .ok_or_else(|| Error::new(format!("{path}/ra"), ErrorKind::Missing))?;
    let at = format!("{path}/ra");
    let mut losses = [0.0; SCENARIO_COUNT];
    let mut count = 0;
    for (i, a) in children(ra, "a").enumerate() {
        if i < SCENARIO_COUNT {
            losses[i] = parse_number(a.text().unwrap_or(""), &format!("{at}/a[{}]", i + 1))?;
        }
        count = i + 1;
    }
    if count != SCENARIO_COUNT {
        let why = format!("{count} values, SPAN arrays have {SCENARIO_COUNT}");
        return Err(Error::invalid(format!("{at}/a"), why));
    }
    Ok(RiskArray { losses, composite_delta: num(ra, "d", &at)? })
}

fn combined_commodity(cc: Node) -> Result<CombinedCommodity, Error> {
    let code = text(cc, "cc", "clearingOrg/ccDef")?.to_string();
    let path = format!("clearingOrg/ccDef[{code}]");
    let mut links = Vec::new();
    for link in children(cc, "pfLink") {
        let at = format!("{path}/pfLink");
        let kind = match text(link, "pfType", &at)? {
            "PHY" => ProductKind::Physical,
            "FUT" => ProductKind::Future,
            "OOP" => ProductKind::OptionOnPhysical,
            other => {
                let why = format!("product type {other:?}; known: PHY, FUT, OOP");
                return Err(Error::new(format!("{at}/pfType"), ErrorKind::Unsupported(why)));
            }
        };
        links.push((text(link, "exch", &at)?.to_string(), int(link, "pfId", &at)?, kind));
    }
    let intra_tiers = match children(cc, "intraTiers").next() {
        Some(t) => tiers(t, &format!("{path}/intraTiers"))?.into_iter().map(|(t, _)| t).collect(),
        None => Vec::new(),
    };
    let mut short_option_minimum = Vec::new();
    if let Some(t) = children(cc, "somTiers").next() {
        for (tier, rate) in tiers(t, &format!("{path}/somTiers"))? {
            let at = format!("{path}/somTiers/tier[{}]/rate", tier.number);
            short_option_minimum
                .push((tier, rate.ok_or_else(|| Error::new(at, ErrorKind::Missing))?));
        }
    }
    let mut intra_spreads = Vec::new();
    for s in children(cc, "dSpread") {
        intra_spreads.push(delta_spread(s, &path)?);
    }
    Ok(CombinedCommodity {
        currency: text(cc, "currency", &path)?.to_string(),
        code,
        links,
        intra_tiers,
        short_option_minimum,
        intra_spreads,
        short_option_method: optional_text(cc, "somMeth").unwrap_or_else(|| "GROSS".into()),
        has_spot_rates: children(cc, "spotRate").next().is_some(),
    })
}

/// Tiers with the rate of risk-array set 1 where one is given.
fn tiers(parent: Node, path: &str) -> Result<Vec<(Tier, Option<f64>)>, Error> {
    let mut out = Vec::new();
    for t in children(parent, "tier") {
        let number = int(t, "tn", &format!("{path}/tier"))? as u32;
        let at = format!("{path}/tier[{number}]");
        let rate =
            match children(t, "rate").find(|r| optional_text(*r, "r").is_none_or(|r| r == "1")) {
                Some(r) => Some(num(r, "val", &format!("{at}/rate"))?),
                None => None,
            };
        let tier = Tier { number, start: optional_text(t, "sPe"), end: optional_text(t, "ePe") };
        out.push((tier, rate));
    }
    Ok(out)
}

fn delta_spread(s: Node, parent: &str) -> Result<DeltaSpread, Error> {
    let number = int(s, "spread", &format!("{parent}/dSpread"))? as u32;
    let path = format!("{parent}/dSpread[{number}]");
    let method = match text(s, "chargeMeth", &path)? {
        "F" => ChargeMethod::Flat,
        "W" => ChargeMethod::Weighted,
        other => {
            let why = format!("charge method {other:?}; known: F (flat), W (weighted)");
            return Err(Error::new(format!("{path}/chargeMeth"), ErrorKind::Unsupported(why)));
        }
    };
    let rate_node = children(s, "rate")
        .find(|r| optional_text(*r, "r").is_none_or(|r| r == "1"))
        .ok_or_else(|| Error::new(format!("{path}/rate"), ErrorKind::Missing))?;
    let rate = non_negative(rate_node, "val", &format!("{path}/rate"))?;
    let mut legs = Vec::new();
    for (i, leg) in children(s, "tLeg").enumerate() {
        let at = format!("{path}/tLeg[{}]", i + 1);
        let side = match text(leg, "rs", &at)? {
            "A" => LegSide::A,
            "B" => LegSide::B,
            other => {
                return Err(Error::invalid(format!("{at}/rs"), format!("{other:?}, not A or B")));
            }
        };
        legs.push(SpreadLeg {
            commodity: text(leg, "cc", &at)?.to_string(),
            tier: int(leg, "tn", &at)? as u32,
            side,
            ratio: positive(leg, "i", &at)?,
        });
    }
    if legs.len() < 2 {
        return Err(Error::invalid(format!("{path}/tLeg"), "a spread needs at least two legs"));
    }
    Ok(DeltaSpread { number, method, rate, legs })
}

fn children<'a, 'input>(
    node: Node<'a, 'input>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'input>(
    node: Node<'a, 'input>,
    name: &'static str,
    path: &str,
) -> Result<Node<'a, 'input>, Error> {
    children(node, name)
        .next()
        .ok_or_else(|| Error::new(format!("{path}/{name}"), ErrorKind::Missing))
}

fn optional_text(node: Node, name: &'static str) -> Option<String> {
    children(node, name).next().and_then(|c| c.text()).map(|t| t.trim().to_string())
}

fn text<'a>(node: Node<'a, '_>, name: &'static str, path: &str) -> Result<&'a str, Error> {
    let c = child(node, name, path)?;
    match c.text().map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(Error::invalid(format!("{path}/{name}"), "empty")),
    }
}

fn parse_number(text: &str, location: &str) -> Result<f64, Error> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| Error::invalid(location, format!("{text:?} is not a number")))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::invalid(location, format!("{text:?} is not finite")))
    }
}

fn num(node: Node, name: &'static str, path: &str) -> Result<f64, Error> {
    parse_number(text(node, name, path)?, &format!("{path}/{name}"))
}

fn optional_num(node: Node, name: &'static str, path: &str) -> Result<Option<f64>, Error> {
    match children(node, name).next() {
        Some(_) => num(node, name, path).map(Some),
        None => Ok(None),
    }
}

fn positive(node: Node, name: &'static str, path: &str) -> Result<f64, Error> {
    let value = num(node, name, path)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(Error::invalid(format!("{path}/{name}"), format!("must be > 0, got {value}")))
    }
}

fn non_negative(node: Node, name: &'static str, path: &str) -> Result<f64, Error> {
    let value = num(node, name, path)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::invalid(format!("{path}/{name}"), format!("must be >= 0, got {value}")))
    }
}

fn int(node: Node, name: &'static str, path: &str) -> Result<u64, Error> {
    let t = text(node, name, path)?;
    t.parse().map_err(|_| {
        Error::invalid(format!("{path}/{name}"), format!("{t:?} is not a whole number"))
    })
}
