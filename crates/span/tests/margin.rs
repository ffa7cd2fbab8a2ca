//! SPAN margin on a small hand-written file, against hand computations from SPAN's published
//! rules: scan risk with covered extremes, calendar spread charges, short option minimums, net
//! option value and inter-commodity credits.
#![allow(
    clippy::unwrap_used,
    clippy::format_collect,
    clippy::format_push_string,
    reason = "test helpers fail loudly; the test file is built as text for readability"
)]

use pricing::OptionRight;
use span::{ContractKind, ErrorKind, SpanFile, SpanMargin, SpanPortfolio, SpanPosition};

/// Price moves of SPAN's 16 points in thirds of the scan range, and their vol moves.
const PRICE: [f64; 16] =
    [0.0, 0.0, 1.0, 1.0, -1.0, -1.0, 2.0, 2.0, -2.0, -2.0, 3.0, 3.0, -3.0, -3.0, 9.0, -9.0];
const COVERED: f64 = 0.35;

fn weight(i: usize) -> f64 {
    if i >= 14 { COVERED } else { 1.0 }
}

fn points() -> String {
    let mut s = String::from("<pointDef><r>1</r>");
    for (i, p) in PRICE.iter().enumerate() {
        let vol = if i >= 14 {
            0.0
        } else if i % 2 == 0 {
            1.0
        } else {
            -1.0
        };
        let paired = if i >= 14 {
            i + 1
        } else if i % 2 == 0 {
            i + 2
        } else {
            i
        };
        s += &format!(
            "<scanPointDef><point>{}</point><priceScanDef><mult>{}</mult></priceScanDef>\
             <volScanDef><mult>{vol}</mult></volScanDef><weight>{}</weight>\
             <pairedPoint>{paired}</pairedPoint></scanPointDef>",
            i + 1,
            p / 3.0,
            weight(i)
        );
    }
    for (i, (m, w)) in [(-1.0, 0.25), (0.0, 0.5), (1.0, 0.25)].iter().enumerate() {
        s += &format!(
            "<deltaPointDef><point>{}</point><priceScanDef><mult>{m}</mult></priceScanDef>\
             <volScanDef><mult>0</mult></volScanDef><weight>{w}</weight></deltaPointDef>",
            i + 1
        );
    }
    s + "</pointDef>"
}

/// A risk array element: the losses given, composite delta `d`.
fn ra(losses: &[f64; 16], d: f64) -> String {
    let a: String = losses.iter().map(|l| format!("<a>{l}</a>")).collect();
    format!("<ra><r>1</r>{a}<d>{d}</d></ra>")
}

/// The array of a contract moving one for one with its price, scan range `range` per contract.
fn linear(range: f64) -> [f64; 16] {
    std::array::from_fn(|i| -PRICE[i] / 3.0 * range * weight(i))
}

fn future(id: u32, period: &str, price: f64, range: f64) -> String {
    format!(
        "<fut><cId>{id}</cId><pe>{period}</pe><p>{price}</p><cvf>1</cvf><sc>1</sc><t>0.1</t>\
         <scanRate><r>1</r><priceScan>{range}</priceScan></scanRate>{}</fut>",
        ra(&linear(range), 1.0)
    )
}

/// A far out-of-the-money call: worth 0.05, a long one gains at most 0.08 and loses at most its
/// premium.
const FAR_CALL: [f64; 16] = [
    0.01, 0.0, 0.0, 0.01, 0.02, 0.03, -0.02, 0.0, 0.04, 0.04, -0.05, -0.01, 0.05, 0.05, -0.08,
    0.0175,
];

fn file_text() -> String {
    let futures_abc = [future(11, "202601", 100.0, 10.0), future(12, "202602", 101.0, 10.0)];
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><spanFile><created>202601050000</created>\
         <pointInTime><date>20260105</date><clearingOrg><ec>TEST</ec>{points}\
         <exchange><exch>X</exch>\
         <futPf><pfId>2</pfId><pfCode>ABC</pfCode><currency>USD</currency>{fa}{fb}</futPf>\
         <futPf><pfId>5</pfId><pfCode>XYZ</pfCode><currency>USD</currency>{fx}</futPf>\
         <oopPf><pfId>3</pfId><pfCode>ABC</pfCode><exercise>EURO</exercise>\
         <currency>USD</currency><priceModel>B</priceModel><series><pe>202601</pe><t>0.1</t>\
         <cvf>1</cvf><svf>1</svf><undC><exch>X</exch><pfId>2</pfId><cId>11</cId></undC>\
         <intrRate><val>0</val></intrRate><scanRate><r>1</r><priceScan>10</priceScan>\
         <volScanPct>0.25</volScanPct></scanRate><opt><cId>31</cId><o>C</o><k>130</k>\
         <p>0.05</p><v>0.2</v>{call}</opt></series></oopPf></exchange>\
         {abc}{xyz}<interSpreads>{inter}</interSpreads>\
         </clearingOrg></pointInTime></spanFile>",
        points = points(),
        fa = futures_abc[0],
        fb = futures_abc[1],
        fx = future(51, "202601", 50.0, 20.0),
        call = ra(&FAR_CALL, 0.02),
        abc = commodity("ABC", &[(2, "FUT"), (3, "OOP")], 2.0, 3.0),
        xyz = commodity("XYZ", &[(5, "FUT")], 1.0, 4.0),
        inter = spread(1, "W", 0.5, &[("ABC", "A", 1.0), ("XYZ", "B", 1.0)]),
    )
}

fn commodity(code: &str, links: &[(u32, &str)], som: f64, intra: f64) -> String {
    let links: String = links
        .iter()
        .map(|(id, t)| {
            format!("<pfLink><exch>X</exch><pfId>{id}</pfId><pfType>{t}</pfType></pfLink>")
        })
        .collect();
    format!(
        "<ccDef><cc>{code}</cc><currency>USD</currency>{links}\
         <intraTiers><tier><tn>0</tn></tier></intraTiers>\
         <somTiers><tier><tn>0</tn><rate><r>1</r><val>{som}</val></rate></tier></somTiers>{}\
         </ccDef>",
        spread(1, "F", intra, &[(code, "B", 1.0), (code, "A", 1.0)])
    )
}

fn spread(number: u32, method: &str, rate: f64, legs: &[(&str, &str, f64)]) -> String {
    let legs: String = legs
        .iter()
        .map(|(cc, side, i)| {
            format!("<tLeg><cc>{cc}</cc><tn>0</tn><rs>{side}</rs><i>{i}</i></tLeg>")
        })
        .collect();
    format!(
        "<dSpread><spread>{number}</spread><chargeMeth>{method}</chargeMeth>\
         <rate><r>1</r><val>{rate}</val></rate>{legs}</dSpread>"
    )
}

fn file() -> SpanFile {
    SpanFile::from_xml(&file_text()).unwrap()
}

fn future_position(product: &str, period: &str, quantity: f64) -> SpanPosition {
    SpanPosition {
        exchange: "X".into(),
        product: product.into(),
        period: period.into(),
        kind: ContractKind::Future,
        quantity,
    }
}

fn far_call(quantity: f64) -> SpanPosition {
    SpanPosition {
        exchange: "X".into(),
        product: "ABC".into(),
        period: "202601".into(),
        kind: ContractKind::Option { right: OptionRight::Call, strike: 130.0 },
        quantity,
    }
}

fn margin(positions: Vec<SpanPosition>) -> SpanMargin {
    span::margin(&file(), &SpanPortfolio::new(positions).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn a_long_future_is_margined_at_its_covered_extreme() {
    let m = margin(vec![future_position("ABC", "202601", 1.0)]);
    let abc = &m.commodities[0];
    // Three scan ranges down, 35 % covered: 3 × 10 × 0.35 = 10.5 beats the full range's 10.
    assert!(close(abc.scan_risk, 10.5));
    assert_eq!(abc.worst_scenario, 15);
    assert!(close(abc.scenario_losses[12], 10.0));
    assert_eq!((abc.intra_spread_charge, abc.short_option_minimum), (0.0, 0.0));
    assert!(close(m.totals["USD"], 10.5));
}

#[test]
fn a_calendar_spread_nets_its_scan_risk_and_pays_the_spread_charge() {
    let m =
        margin(vec![future_position("ABC", "202601", 2.0), future_position("ABC", "202602", -2.0)]);
    let abc = &m.commodities[0];
    assert!(abc.scenario_losses.iter().all(|l| l.abs() < 1e-12));
    assert_eq!(abc.scan_risk, 0.0);
    assert!(close(abc.net_delta, 0.0));
    // Two spreads at 3 a spread.
    assert!(close(abc.intra_spread_charge, 6.0));
    assert!(close(m.totals["USD"], 6.0));
    // The same deltas in one month form no spread: nothing to charge.
    let flat =
        margin(vec![future_position("ABC", "202601", 1.0), future_position("ABC", "202601", -1.0)]);
    assert_eq!(flat.commodities[0].intra_spread_charge, 0.0);
}

#[test]
fn a_short_far_out_of_the_money_option_hits_the_short_option_minimum() {
    let m = margin(vec![far_call(-10.0)]);
    let abc = &m.commodities[0];
    // Short ten: the worst scenario is the up extreme, 10 × 0.08 = 0.8.
    assert!(close(abc.scan_risk, 0.8));
    assert_eq!(abc.worst_scenario, 14);
    // The minimum: 10 short contracts × 2 = 20 binds.
    assert!(close(abc.short_option_minimum, 20.0));
    assert!(close(abc.risk_requirement, 20.0));
    // Net option value −10 × 0.05 = −0.5: the premium received is margined on top.
    assert!(close(abc.net_option_value, -0.5));
    assert!(close(m.totals["USD"], 20.5));
    // A long option owes no minimum: its premium (net option value) pays for it.
    let long = margin(vec![far_call(10.0)]);
    let abc = &long.commodities[0];
    assert_eq!(abc.short_option_minimum, 0.0);
    assert!(close(abc.scan_risk, 0.5));
    assert!(close(long.totals["USD"], 0.5 - 0.5));
}

#[test]
fn opposite_deltas_in_two_commodities_earn_the_inter_commodity_credit() {
    let m =
        margin(vec![future_position("ABC", "202601", 1.0), future_position("XYZ", "202601", -1.0)]);
    let (abc, xyz) = (&m.commodities[0], &m.commodities[1]);
    // No time or vol risk in futures: all of scan risk is price risk, per unit of delta.
    assert!(close(abc.price_risk, 10.5) && close(xyz.price_risk, 21.0));
    // One spread, 50 % credit on each leg's weighted futures price risk.
    assert!(close(abc.inter_credit, 5.25));
    assert!(close(xyz.inter_credit, 10.5));
    assert!(close(m.totals["USD"], 5.25 + 10.5));
    // Same direction: no spread, no credit.
    let same =
        margin(vec![future_position("ABC", "202601", 1.0), future_position("XYZ", "202601", 1.0)]);
    assert!(same.commodities.iter().all(|c| c.inter_credit == 0.0));
    assert!(close(same.totals["USD"], 10.5 + 21.0));
}

#[test]
fn margin_is_positively_homogeneous() {
    let book = |k: f64| {
        vec![
            future_position("ABC", "202601", 3.0 * k),
            future_position("ABC", "202602", -k),
            far_call(-7.0 * k),
            future_position("XYZ", "202601", -2.0 * k),
        ]
    };
    let one = margin(book(1.0));
    for k in [0.5, 2.0, 7.0] {
        let scaled = margin(book(k));
        assert!(close(scaled.totals["USD"], k * one.totals["USD"]), "k = {k}");
        for (a, b) in scaled.commodities.iter().zip(&one.commodities) {
            assert!(close(a.risk_requirement, k * b.risk_requirement));
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_place() {
    let f = file();
    let unknown = SpanPortfolio::new(vec![future_position("ABC", "209912", 1.0)]).unwrap();
    let e = span::margin(&f, &unknown).unwrap_err();
    assert_eq!(e.location, "positions[0]");
    assert!(matches!(e.kind, ErrorKind::Unresolved(_)));
    assert!(SpanPortfolio::new(vec![future_position("ABC", "202601", f64::NAN)]).is_err());

    let text = file_text();
    let e = SpanFile::from_xml(&text.replace("<k>130</k>", "<k>abc</k>")).unwrap_err();
    assert_eq!(e.location, "clearingOrg/exchange[X]/oopPf[3]/series[202601]/opt[31]/k");
    assert!(matches!(e.kind, ErrorKind::Invalid(_)));
    let e = SpanFile::from_xml(&text.replace("<p>100</p>", "")).unwrap_err();
    assert_eq!(e.location, "clearingOrg/exchange[X]/futPf[2]/fut[11]/p");
    assert_eq!(e.kind, ErrorKind::Missing);
    let e = SpanFile::from_xml(&text.replace("<a>0.01</a>", "")).unwrap_err();
    assert!(e.location.ends_with("opt[31]/ra/a"), "{}", e.location);
    // Spot-month charges are not computed: a commodity that sets them is refused, not
    // under-margined.
    let spot = SpanFile::from_xml(&text.replace("<cc>ABC</cc>", "<cc>ABC</cc><spotRate/>"));
    let one = SpanPortfolio::new(vec![future_position("ABC", "202601", 1.0)]).unwrap();
    let e = span::margin(&spot.unwrap(), &one).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Unsupported(_)), "{e}");
    let e = SpanFile::from_xml("<spanFile><created>x").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Syntax(_)));
}

#[test]
fn the_json_portfolio_shape_reads_as_documented() {
    let json = r#"{"positions": [
        {"exchange": "X", "product": "ABC", "kind": "future", "period": "202601", "quantity": 2},
        {"exchange": "X", "product": "ABC", "kind": "option", "period": "202601",
         "right": "C", "strike": 130, "quantity": -10}
    ]}"#;
    let p = SpanPortfolio::from_json(json).unwrap();
    assert_eq!(p.positions()[1], far_call(-10.0));
    let e = SpanPortfolio::from_json(&json.replace("\"right\": \"C\", ", "")).unwrap_err();
    assert_eq!((e.location.as_str(), e.kind), ("positions[1].right", ErrorKind::Missing));
}

#[test]
fn spreads_between_tiers_pair_the_tiers_net_deltas() {
    // ABC split into a front tier (January) and a back tier (February onwards), with one spread
    // between them at 5 a spread.
    let tiers = "<intraTiers><tier><tn>1</tn><sPe>202601</sPe><ePe>202601</ePe></tier>\
                 <tier><tn>2</tn><sPe>202602</sPe></tier></intraTiers>";
    let same_tier = spread(1, "F", 3.0, &[("ABC", "B", 1.0), ("ABC", "A", 1.0)]);
    let across = spread(1, "F", 5.0, &[("ABC", "A", 1.0), ("ABC", "B", 1.0)])
        .replacen("<tn>0</tn>", "<tn>1</tn>", 1)
        .replacen("<tn>0</tn>", "<tn>2</tn>", 1);
    let text = file_text()
        .replacen("<intraTiers><tier><tn>0</tn></tier></intraTiers>", tiers, 1)
        .replace(&same_tier, &across);
    let f = SpanFile::from_xml(&text).unwrap();
    let book = |jan: f64, feb: f64| {
        let p = vec![future_position("ABC", "202601", jan), future_position("ABC", "202602", feb)];
        span::margin(&f, &SpanPortfolio::new(p).unwrap()).unwrap().commodities[0].clone()
    };
    // Long 3 January against short 2 February: two spreads; the third January delta is left.
    assert!(close(book(3.0, -2.0).intra_spread_charge, 10.0));
    // Either direction forms spreads.
    assert!(close(book(-1.0, 1.0).intra_spread_charge, 5.0));
    // Both long: nothing to pair.
    assert_eq!(book(1.0, 1.0).intra_spread_charge, 0.0);
}
