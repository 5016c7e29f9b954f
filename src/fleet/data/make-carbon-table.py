#!/usr/bin/env python3
"""Regenerate src/fleet/data/carbon.json from codecarbon's data files.

Usage (from the repository root or from src/fleet/data):

    python3 src/fleet/data/make-carbon-table.py [DATA_DIR]

DATA_DIR holds global_energy_mix.json, impact.csv, usa_emissions.json and
nordic_emissions.json, unchanged from the PyPI package codecarbon 3.3.2
(folder codecarbon/data/); it defaults to ../shared/data/carbon. The output
is always written next to this script. The same inputs give the same bytes:
keys are sorted, one entry per line. See NOTICE.md for sources and licence.
"""

import csv
import json
import sys
from pathlib import Path

# EPA eGRID publishes lb/MWh; 1 lb = 0.4536 kg, so 1 lb/MWh = 0.4536 g/kWh.
LBS_PER_MWH_TO_G_PER_KWH = 0.4536

# Region ids misspelt in codecarbon 3.3.2's impact.csv → the provider's real id.
CLOUD_REGION_FIXES = {
    ("gcp", "me-cenrtal1"): "me-central1",  # Doha, Qatar
}

# ISO 3166-1 alpha-3 → alpha-2, for every country in global_energy_mix.json.
ALPHA3_TO_ALPHA2 = {
    "ABW": "AW", "AFG": "AF", "AGO": "AO", "ALB": "AL", "ARE": "AE",
    "ARG": "AR", "ARM": "AM", "ASM": "AS", "ATG": "AG", "AUS": "AU",
    "AUT": "AT", "AZE": "AZ", "BDI": "BI", "BEL": "BE", "BEN": "BJ",
    "BFA": "BF", "BGD": "BD", "BGR": "BG", "BHR": "BH", "BHS": "BS",
    "BIH": "BA", "BLR": "BY", "BLZ": "BZ", "BMU": "BM", "BOL": "BO",
    "BRA": "BR", "BRB": "BB", "BRN": "BN", "BTN": "BT", "BWA": "BW",
    "CAF": "CF", "CAN": "CA", "CHE": "CH", "CHL": "CL", "CHN": "CN",
    "CIV": "CI", "CMR": "CM", "COD": "CD", "COG": "CG", "COK": "CK",
    "COL": "CO", "COM": "KM", "CPV": "CV", "CRI": "CR", "CUB": "CU",
    "CYM": "KY", "CYP": "CY", "CZE": "CZ", "DEU": "DE", "DJI": "DJ",
    "DMA": "DM", "DNK": "DK", "DOM": "DO", "DZA": "DZ", "ECU": "EC",
    "EGY": "EG", "ERI": "ER", "ESH": "EH", "ESP": "ES", "EST": "EE",
    "ETH": "ET", "FIN": "FI", "FJI": "FJ", "FLK": "FK", "FRA": "FR",
    "FRO": "FO", "GAB": "GA", "GBR": "GB", "GEO": "GE", "GHA": "GH",
    "GIB": "GI", "GIN": "GN", "GLP": "GP", "GMB": "GM", "GNB": "GW",
    "GNQ": "GQ", "GRC": "GR", "GRD": "GD", "GRL": "GL", "GTM": "GT",
    "GUF": "GF", "GUM": "GU", "GUY": "GY", "HKG": "HK", "HND": "HN",
    "HRV": "HR", "HTI": "HT", "HUN": "HU", "IDN": "ID", "IND": "IN",
    "IRL": "IE", "IRN": "IR", "IRQ": "IQ", "ISL": "IS", "ISR": "IL",
    "ITA": "IT", "JAM": "JM", "JOR": "JO", "JPN": "JP", "KAZ": "KZ",
    "KEN": "KE", "KGZ": "KG", "KHM": "KH", "KIR": "KI", "KNA": "KN",
    "KOR": "KR", "KWT": "KW", "LAO": "LA", "LBN": "LB", "LBR": "LR",
    "LBY": "LY", "LCA": "LC", "LKA": "LK", "LSO": "LS", "LTU": "LT",
    "LUX": "LU", "LVA": "LV", "MAC": "MO", "MAR": "MA", "MDA": "MD",
    "MDG": "MG", "MDV": "MV", "MEX": "MX", "MKD": "MK", "MLI": "ML",
    "MLT": "MT", "MMR": "MM", "MNE": "ME", "MNG": "MN", "MOZ": "MZ",
    "MRT": "MR", "MSR": "MS", "MTQ": "MQ", "MUS": "MU", "MWI": "MW",
    "MYS": "MY", "NAM": "NA", "NCL": "NC", "NER": "NE", "NGA": "NG",
    "NIC": "NI", "NLD": "NL", "NOR": "NO", "NPL": "NP", "NRU": "NR",
    "NZL": "NZ", "OMN": "OM", "PAK": "PK", "PAN": "PA", "PER": "PE",
    "PHL": "PH", "PNG": "PG", "POL": "PL", "PRI": "PR", "PRK": "KP",
    "PRT": "PT", "PRY": "PY", "PSE": "PS", "PYF": "PF", "QAT": "QA",
    "REU": "RE", "ROU": "RO", "RUS": "RU", "RWA": "RW", "SAU": "SA",
    "SDN": "SD", "SEN": "SN", "SGP": "SG", "SHN": "SH", "SLB": "SB",
    "SLE": "SL", "SLV": "SV", "SOM": "SO", "SPM": "PM", "SRB": "RS",
    "SSD": "SS", "STP": "ST", "SUR": "SR", "SVK": "SK", "SVN": "SI",
    "SWE": "SE", "SWZ": "SZ", "SYC": "SC", "SYR": "SY", "TCA": "TC",
    "TCD": "TD", "TGO": "TG", "THA": "TH", "TJK": "TJ", "TKM": "TM",
    "TLS": "TL", "TON": "TO", "TTO": "TT", "TUN": "TN", "TUR": "TR",
    "TWN": "TW", "TZA": "TZ", "UGA": "UG", "UKR": "UA", "URY": "UY",
    "USA": "US", "UZB": "UZ", "VCT": "VC", "VEN": "VE", "VGB": "VG",
    "VIR": "VI", "VNM": "VN", "VUT": "VU", "WSM": "WS", "YEM": "YE",
    "ZAF": "ZA", "ZMB": "ZM", "ZWE": "ZW",
}


def fail(message):
    sys.exit(f"make-carbon-table: {message}")


def countries(data_dir):
    mix = json.loads((data_dir / "global_energy_mix.json").read_text(encoding="utf-8"))
    out = {}
    for alpha3, row in mix.items():
        if alpha3 != row.get("iso_code") or len(alpha3) != 3:
            fail(f"global_energy_mix.json: key {alpha3!r} is not its iso_code")
        value = row.get("carbon_intensity")
        if not isinstance(value, (int, float)) or value < 0:
            fail(f"global_energy_mix.json: {alpha3} has no carbon_intensity")
        out[alpha3] = {
            "name": row["country_name"],
            "g_per_kwh": value,
            "year": row["year"],
        }
    return out


def alpha2(countries_table):
    missing = sorted(set(countries_table) - set(ALPHA3_TO_ALPHA2))
    if missing:
        fail(f"no alpha-2 code for {', '.join(missing)}: add them to ALPHA3_TO_ALPHA2")
    out = {ALPHA3_TO_ALPHA2[a3]: a3 for a3 in countries_table}
    if len(out) != len(countries_table):
        fail("two alpha-3 codes share an alpha-2 code")
    return out


def cloud(data_dir, countries_table):
    out = {}
    # utf-8-sig: codecarbon's impact.csv starts with a byte-order mark.
    with open(data_dir / "impact.csv", encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            provider = row["provider"].strip().lower()
            region = row["region"].strip().lower()
            region = CLOUD_REGION_FIXES.get((provider, region), region)
            country = row["countryIsoCode"].strip().upper()
            if country not in countries_table:
                fail(f"impact.csv: {provider}:{region} is in unknown country {country!r}")
            key = f"{provider}:{region}"
            if key in out:
                fail(f"impact.csv: {key} appears twice")
            out[key] = {
                "g_per_kwh": float(row["impact"]),
                "country": country,
                "provider_name": row["providerName"].strip(),
                # regionName is empty for every GCP row: the city stands in.
                "region_name": row["regionName"].strip() or row["city"].strip(),
            }
    return out


def us_states(data_dir):
    raw = json.loads((data_dir / "usa_emissions.json").read_text(encoding="utf-8"))
    if raw["_unit"]["emissions"] != "lbs/MWh":
        fail("usa_emissions.json: emissions are no longer in lbs/MWh")
    year = raw["_source"]["year"]
    out = {}
    for name, row in raw.items():
        code = str(row.get("regionCode", "")) if not name.startswith("_") else ""
        # Skip the metadata and the national "usa" aggregate (the country table has the US).
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            continue
        out[code] = {
            "name": name.title().replace(" Of ", " of "),
            "g_per_kwh": round(row["emissions"] * LBS_PER_MWH_TO_G_PER_KWH, 3),
            "year": year,
        }
    return out


def nordic(data_dir):
    raw = json.loads((data_dir / "nordic_emissions.json").read_text(encoding="utf-8"))
    out = {}
    for zone, row in raw["data"].items():
        if row.get("unit") != "gCO2eq/kWh":
            fail(f"nordic_emissions.json: {zone} is not in gCO2eq/kWh")
        out[zone.upper()] = {
            "g_per_kwh": row["emission_factor"],
            "year": row["year"],
            "description": row["description"],
        }
    return out


def render(table):
    """Sorted keys, one entry per line: small diffs, same bytes every run."""
    lines = ["{"]
    sections = sorted(table)
    for i, section in enumerate(sections):
        entries = table[section]
        lines.append(f"  {json.dumps(section)}: {{")
        keys = sorted(entries)
        for j, key in enumerate(keys):
            value = json.dumps(entries[key], sort_keys=True, ensure_ascii=False)
            comma = "," if j + 1 < len(keys) else ""
            lines.append(f"    {json.dumps(key)}: {value}{comma}")
        lines.append("  }" + ("," if i + 1 < len(sections) else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/carbon")
    if not data_dir.is_dir():
        fail(f"{data_dir} is not a directory (pass the carbon data folder as the first argument)")
    country_table = countries(data_dir)
    table = {
        "countries": country_table,
        "alpha2": alpha2(country_table),
        "cloud": cloud(data_dir, country_table),
        "us_states": us_states(data_dir),
        "nordic": nordic(data_dir),
    }
    out = Path(__file__).resolve().parent / "carbon.json"
    out.write_text(render(table), encoding="utf-8")
    counts = ", ".join(f"{len(v)} {k}" for k, v in table.items())
    print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    main()
