//! Company names, the ways a bank or a remittance spells them, and bank accounts.

use super::pick;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

const STEMS: &[&str] = &[
    "Northwind",
    "Bluegrass",
    "Summit",
    "Cascade",
    "Redwood",
    "Granite",
    "Ironbridge",
    "Silverline",
    "Lakeshore",
    "Pinecrest",
    "Riverbend",
    "Highland",
    "Keystone",
    "Meridian",
    "Frontier",
    "Harbor",
    "Prairie",
    "Sterling",
    "Atlas",
    "Evergreen",
    "Liberty",
    "Pioneer",
    "Beacon",
    "Crescent",
    "Falcon",
    "Heritage",
    "Horizon",
    "Landmark",
    "Magnolia",
    "Oakridge",
    "Pacific",
    "Patriot",
    "Pinnacle",
    "Quantum",
    "Ridgeway",
    "Sagebrush",
    "Sequoia",
    "Shoreline",
    "Sunbelt",
    "Tidewater",
    "Trident",
    "Vanguard",
    "Westfield",
    "Whitestone",
    "Willow Creek",
    "Apex",
    "Arrowhead",
    "Benchmark",
    "Blue Ridge",
    "Brookside",
    "Canyon",
    "Capstone",
    "Cedar Valley",
    "Centennial",
    "Charter",
    "Clearwater",
    "Coastal",
    "Colonial",
    "Compass",
    "Copperfield",
    "Cornerstone",
    "Crown",
    "Delta",
    "Diamond",
    "Eagle",
    "Empire",
    "Fairview",
    "Foothill",
    "Gateway",
    "Golden State",
    "Great Lakes",
    "Greenfield",
    "Gulfstream",
    "Hamilton",
    "Hillcrest",
    "Hudson",
    "Independence",
    "Jefferson",
    "Juniper",
    "Lincoln",
    "Madison",
    "Maple Leaf",
    "Midland",
    "Mountain View",
    "National",
    "Northstar",
    "Oasis",
    "Orion",
    "Palmetto",
    "Paramount",
    "Piedmont",
    "Premier",
    "Red Rock",
    "Regal",
    "Riverside",
    "Rocky Mountain",
    "Royal Oak",
    "Sierra",
    "Silver Creek",
    "Skyline",
    "Southern Cross",
    "Spartan",
    "Stonebridge",
    "Suncoast",
    "Titan",
    "Trinity",
    "Union",
    "Vista",
    "Washington",
    "Western Star",
    "Wildwood",
    "Windsor",
    "Zenith",
    "Anchor",
    "Badger",
    "Bayou",
    "Birchwood",
    "Bridgeport",
    "Buckeye",
    "Cardinal",
    "Chesapeake",
    "Cobalt",
    "Cypress",
    "Driftwood",
    "Elmwood",
    "Everest",
    "Fulton",
    "Garrison",
    "Glacier",
    "Hawthorne",
    "Ironwood",
    "Kingsley",
    "Lone Star",
    "Mesa",
    "Mohawk",
    "Monarch",
    "Nautilus",
    "Osprey",
    "Overland",
    "Peachtree",
    "Polaris",
    "Quarry",
    "Rainier",
    "Sable",
    "Saratoga",
    "Shenandoah",
    "Silverton",
    "Tamarack",
    "Thornton",
    "Timberline",
    "Tristate",
    "Upland",
    "Valor",
    "Wabash",
    "Yellowstone",
    "Acme",
    "Allied",
    "American",
    "Consolidated",
    "General",
    "Continental",
    "Universal",
    "Standard",
    "Metro",
    "Tri-County",
];

const INDUSTRIES: &[&str] = &[
    "Industrial Supply",
    "Foods",
    "Logistics",
    "Medical Supply",
    "Electric",
    "Construction",
    "Distribution",
    "Manufacturing",
    "Hardware",
    "Packaging",
    "Plastics",
    "Chemicals",
    "Steel",
    "Lumber",
    "Auto Parts",
    "Office Products",
    "Healthcare",
    "Pharmacy",
    "Restaurant Group",
    "Hospitality",
    "Farms",
    "Dairy",
    "Beverage",
    "Energy",
    "Plumbing Supply",
    "HVAC",
    "Electrical Contractors",
    "Engineering",
    "Services",
    "Technologies",
    "Systems",
    "Solutions",
    "Laboratories",
    "Retail",
    "Grocers",
    "Marine",
    "Aviation",
    "Transportation",
    "Freight",
    "Trucking",
    "Home Centers",
    "Building Materials",
    "Paper",
    "Textiles",
    "Furniture",
    "Printing",
    "Signs",
    "Tool & Die",
    "Machine Works",
    "Fabrication",
    "Water Works",
    "Environmental",
    "Industries",
    "Enterprises",
    "Equipment",
    "Products",
    "Brothers",
    "Associates",
    "Management",
    "Communications",
    "Pet Supply",
    "Nursery",
    "Landscaping",
    "Janitorial Supply",
    "Uniforms",
    "Fasteners",
    "Bearings",
    "Hydraulics",
    "Pumps & Valves",
    "Coatings",
    "Glass",
    "Masonry",
    "Roofing",
    "Flooring",
    "Cabinetry",
    "Appliance",
    "Sporting Goods",
    "Outfitters",
    "Wholesale",
    "Trading International",
    "Imports",
    "Veterinary Supply",
    "Dental Supply",
    "Optical",
    "Scientific",
    "Instruments",
    "Controls",
];

/// Suffixes with rough frequencies among US business names.
const SUFFIXES: &[(&str, u32)] = &[
    ("Inc", 30),
    ("LLC", 30),
    ("Corp", 8),
    ("Corporation", 6),
    ("Co", 5),
    ("Company", 5),
    ("Incorporated", 3),
    ("Ltd", 3),
    ("LP", 2),
    ("", 8),
];

const STATES: &[&str] = &[
    "Texas",
    "Ohio",
    "Georgia",
    "Arizona",
    "Nevada",
    "Oregon",
    "Iowa",
    "Kansas",
    "Maine",
    "Florida",
    "Illinois",
    "Michigan",
    "Virginia",
    "Colorado",
    "Utah",
    "Idaho",
    "Indiana",
    "Kentucky",
    "Alabama",
    "Missouri",
    "the Carolinas",
    "New England",
    "the Midwest",
];

/// Abbreviations banks and AP systems apply to names, upper case.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("INDUSTRIAL", "INDL"),
    ("INTERNATIONAL", "INTL"),
    ("MANUFACTURING", "MFG"),
    ("CORPORATION", "CORP"),
    ("COMPANY", "CO"),
    ("INCORPORATED", "INC"),
    ("SERVICES", "SVCS"),
    ("DISTRIBUTION", "DIST"),
    ("SUPPLY", "SUP"),
    ("MEDICAL", "MED"),
    ("TECHNOLOGIES", "TECH"),
    ("SYSTEMS", "SYS"),
    ("ENGINEERING", "ENGR"),
    ("CONSTRUCTION", "CONSTR"),
    ("PRODUCTS", "PRODS"),
    ("HOLDINGS", "HLDGS"),
    ("ASSOCIATES", "ASSOC"),
    ("BROTHERS", "BROS"),
    ("ENTERPRISES", "ENT"),
    ("EQUIPMENT", "EQUIP"),
    ("NATIONAL", "NATL"),
    ("ELECTRIC", "ELEC"),
    ("CHEMICALS", "CHEM"),
    ("HEALTHCARE", "HLTHCARE"),
    ("LABORATORIES", "LABS"),
    ("BUILDING", "BLDG"),
    ("MATERIALS", "MATLS"),
    ("TRANSPORTATION", "TRANSP"),
    ("MANAGEMENT", "MGMT"),
    ("MOUNTAIN", "MTN"),
    ("COMMUNICATIONS", "COMM"),
    ("WHOLESALE", "WHSL"),
    ("INSTRUMENTS", "INSTR"),
    ("AMERICAN", "AMER"),
    ("&", "AND"),
];

const CORPORATE_SUFFIXES: &[&str] = &[
    "INC",
    "LLC",
    "CORP",
    "CORPORATION",
    "CO",
    "COMPANY",
    "INCORPORATED",
    "LTD",
    "LP",
];

/// Payment services that pay suppliers on behalf of their clients from their own accounts.
pub(crate) const SERVICES: &[&str] = &[
    "BILL.COM",
    "AVIDXCHANGE",
    "PAYMODE-X",
    "CORPAY SOLUTIONS",
    "TIPALTI PAYMENTS",
    "MINERALTREE",
    "NVOICEPAY",
];

fn suffix(rng: &mut ChaCha8Rng) -> &'static str {
    let total: u32 = SUFFIXES.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (s, w) in SUFFIXES {
        if x < *w {
            return s;
        }
        x -= w;
    }
    "Inc"
}

fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hands out company names that are unique within a world, but deliberately alike: families
/// share a stem and unrelated companies reuse stems, as real customer lists do.
pub(crate) struct NameMaker {
    used: HashSet<String>,
}

impl NameMaker {
    pub(crate) fn new() -> Self {
        NameMaker {
            used: HashSet::new(),
        }
    }

    pub(crate) fn stem(&self, rng: &mut ChaCha8Rng) -> &'static str {
        STEMS[pick(rng, STEMS.len())]
    }

    /// A new company name on `stem`.
    pub(crate) fn company(&mut self, rng: &mut ChaCha8Rng, stem: &str) -> String {
        for attempt in 0..12 {
            let industry = INDUSTRIES[pick(rng, INDUSTRIES.len())];
            let sfx = suffix(rng);
            let name = if attempt < 4 {
                join(&[stem, industry, sfx])
            } else {
                let state = STATES[pick(rng, STATES.len())];
                join(&[stem, industry, "of", state, sfx])
            };
            if self.used.insert(name.clone()) {
                return name;
            }
        }
        let mut n = 2;
        loop {
            let name = format!("{stem} {} {n}", INDUSTRIES[pick(rng, INDUSTRIES.len())]);
            if self.used.insert(name.clone()) {
                return name;
            }
            n += 1;
        }
    }

    /// The holding company of a family.
    pub(crate) fn holding(&mut self, rng: &mut ChaCha8Rng, stem: &str) -> String {
        let kind = ["Holdings", "Group", "Enterprises", "Companies", "Brands"][pick(rng, 5)];
        let name = join(&[stem, kind, suffix(rng)]);
        if self.used.insert(name.clone()) {
            name
        } else {
            self.company(rng, stem)
        }
    }
}

fn words_upper(name: &str) -> Vec<String> {
    name.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| c == ',' || c == '.')
                .to_ascii_uppercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect::<String>().trim_end().to_string()
}

/// ACH carries the receiver's or originator's name in a 22-character field, upper case.
pub(crate) fn bank_name(name: &str) -> String {
    truncate(&words_upper(name).join(" "), 22)
}

fn abbreviate(words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|w| {
            ABBREVIATIONS
                .iter()
                .find(|(long, _)| long == w)
                .map_or_else(|| w.clone(), |(_, s)| s.to_string())
        })
        .collect()
}

fn drop_suffix(words: &[String]) -> Vec<String> {
    let mut w = words.to_vec();
    if w.len() > 1
        && w.last()
            .is_some_and(|l| CORPORATE_SUFFIXES.contains(&l.as_str()))
    {
        w.pop();
    }
    w
}

/// Which spelling of a name a payer used; the payment's case family names the dimension, this
/// the detail (kept for docs and tests, not written out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameVariant {
    Upper,
    Truncated22,
    Abbreviated,
    ApDept,
    NoSuffix,
    Punctuated,
}

/// A spelling of `name` as a bank statement or a remittance shows it.
pub(crate) fn variant(rng: &mut ChaCha8Rng, name: &str) -> (String, NameVariant) {
    let words = words_upper(name);
    let v = match rng.random_range(0..100) {
        0..18 => NameVariant::Upper,
        18..42 => NameVariant::Truncated22,
        42..66 => NameVariant::Abbreviated,
        66..78 => NameVariant::ApDept,
        78..94 => NameVariant::NoSuffix,
        _ => NameVariant::Punctuated,
    };
    let s = match v {
        NameVariant::Upper => words.join(" "),
        NameVariant::Truncated22 => truncate(&words.join(" "), 22),
        NameVariant::Abbreviated => {
            let s = abbreviate(&words).join(" ");
            // Abbreviation usually happens to fit a field, so often truncated as well.
            if rng.random_bool(0.5) {
                truncate(&s, 22)
            } else {
                s
            }
        }
        NameVariant::ApDept => {
            let prefix = ["AP DEPT", "A/P DEPT", "ACCOUNTS PAYABLE", "AP"][pick(rng, 4)];
            let s = format!("{prefix} {}", drop_suffix(&words).join(" "));
            if rng.random_bool(0.5) {
                truncate(&s, 22)
            } else {
                s
            }
        }
        NameVariant::NoSuffix => {
            let s = drop_suffix(&words).join(" ");
            if rng.random_bool(0.3) { title(&s) } else { s }
        }
        NameVariant::Punctuated => {
            let mut w = words.clone();
            if let Some(last) = w.last_mut() {
                if CORPORATE_SUFFIXES.contains(&last.as_str()) {
                    *last = format!("{last}.");
                    if let Some(i) = w.len().checked_sub(2) {
                        w[i].push(',');
                    }
                }
            }
            w.join(" ")
        }
    };
    (s, v)
}

fn title(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A pool of bank routing numbers (valid ABA check digits) shared by a world's accounts.
pub(crate) fn routing_numbers(rng: &mut ChaCha8Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut d: Vec<u32> = (0..8).map(|_| rng.random_range(0..10)).collect();
            // Federal Reserve routing symbols start 01-12 (or 21-32 for thrifts).
            d[0] = rng.random_range(0..2);
            d[1] = if d[0] == 0 {
                rng.random_range(1..10)
            } else {
                rng.random_range(0..3)
            };
            let s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5]);
            d.push((10 - s % 10) % 10);
            d.iter().map(|x| char::from(b'0' + *x as u8)).collect()
        })
        .collect()
}

/// A bank account `routing:account`, or a bare account number when `bare`.
pub(crate) fn account(rng: &mut ChaCha8Rng, routings: &[String], bare: bool) -> String {
    let len = rng.random_range(8..=12);
    let mut acct: String = (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    if acct.starts_with('0') {
        acct.replace_range(0..1, "4");
    }
    if bare {
        acct
    } else {
        let r = routings
            .get(pick(rng, routings.len()))
            .cloned()
            .unwrap_or_default();
        format!("{r}:{acct}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn variants_look_like_bank_spellings() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let name = "Northwind Industrial Supply Inc";
        assert_eq!(bank_name(name), "NORTHWIND INDUSTRIAL S");
        let mut seen = Vec::new();
        for _ in 0..200 {
            let (s, v) = variant(&mut rng, name);
            assert!(!s.is_empty());
            if v == NameVariant::Truncated22 {
                assert!(s.chars().count() <= 22, "{s}");
            }
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        assert!(
            seen.contains(&"NORTHWIND INDL SUPPLY INC".to_string())
                || seen.contains(&"NORTHWIND INDL SUP INC".to_string()),
            "{seen:?}"
        );
        assert!(seen.iter().any(|s| s.starts_with("AP")), "{seen:?}");
        assert!(
            seen.contains(&"NORTHWIND INDUSTRIAL SUPPLY".to_string()),
            "{seen:?}"
        );
    }

    #[test]
    fn routing_numbers_have_valid_check_digits() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for r in routing_numbers(&mut rng, 50) {
            let d: Vec<u32> = r.chars().filter_map(|c| c.to_digit(10)).collect();
            assert_eq!(d.len(), 9);
            let s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
            assert_eq!(s % 10, 0, "{r}");
        }
    }

    #[test]
    fn names_are_unique() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut m = NameMaker::new();
        let mut all = HashSet::new();
        for _ in 0..20_000 {
            let stem = m.stem(&mut rng);
            assert!(all.insert(m.company(&mut rng, stem)));
        }
    }
}
