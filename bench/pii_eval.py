"""PII and secrets detection quality, and the latency a policy with PII scanning adds.

* PII: sentences from our own templates filled with `faker` values (presidio-evaluator style), every value's
  span known; precision / recall / F1 per entity type. A prediction counts when it has the right type and
  overlaps the true span (``--exact`` also reports exact-span matches).
* Secrets: real-format keys generated here (AWS access key ids, GitHub tokens, Slack tokens, OpenAI-style
  keys, signed JWTs, PEM private keys made with `cryptography`), each in a line of code or prose; recall
  is the share found with a span covering the key. False positives: the share of `benign_instructions`
  rows (ordinary code and prose; prompt and response) in which anything is reported as a secret.
* Latency: p50/p95 of a 200-character text through the embedded guard alone and under a policy that also
  runs PII + secrets scanning (warm, one text per call).

    pip install 'railguard[pii]' faker
    python bench/pii_eval.py [--sentences 1200] [--out bench/results/pii_eval.json]

Run by hand; never part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import random
import statistics
import string
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import railguard
from railguard import GuardInput
from railguard.config import CoreSettings
from railguard.guards.policy import PolicyGuard
from railguard.guards.rules import RulesGuard

ROOT = Path(__file__).resolve().parent.parent
PATTERN_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")
ENTITIES = PATTERN_ENTITIES + ("PERSON", "LOCATION", "US_SSN")

# {SLOT} is filled with a faker value of that entity; sentences without slots measure false positives.
TEMPLATES = (
    "My name is {PERSON} and you can reach me at {EMAIL_ADDRESS}.",
    "Please call {PERSON} at {PHONE_NUMBER} before Friday.",
    "Charge the order to card {CREDIT_CARD}, expiry next year.",
    "Wire the deposit to IBAN {IBAN_CODE} by the end of the month.",
    "The server at {IP_ADDRESS} keeps timing out since the update.",
    "{PERSON} moved to {LOCATION} last spring.",
    "Her social security number is {US_SSN}, please update the file.",
    "Send the invoice to {EMAIL_ADDRESS} and copy {EMAIL_ADDRESS}.",
    "Can you draft a reply to {PERSON}? Their number is {PHONE_NUMBER}.",
    "I was born in {LOCATION} and now live in {LOCATION}.",
    "Login attempts from {IP_ADDRESS} and {IP_ADDRESS} were blocked.",
    "Refund card number {CREDIT_CARD} for {PERSON}.",
    "Account holder: {PERSON}, IBAN: {IBAN_CODE}",
    "ssh admin@{IP_ADDRESS} -p 2222",
    "For questions email {EMAIL_ADDRESS} or phone {PHONE_NUMBER}.",
    "Our office in {LOCATION} opens at nine.",
    "Tell {PERSON} that the meeting moved to Thursday.",
    "Customer {PERSON} (SSN {US_SSN}) asked about their loan.",
    "Is {CREDIT_CARD} a valid Visa number?",
    "Please verify the transfer from {IBAN_CODE} to {IBAN_CODE}.",
    "{EMAIL_ADDRESS} reported a bug in the checkout page.",
    "The contract was signed by {PERSON} and {PERSON}.",
    "Ship it to {PERSON}, {LOCATION}.",
    "Ping {IP_ADDRESS} to see if the printer is up.",
    "My new phone number is {PHONE_NUMBER}, save it please.",
    "Dear {PERSON}, thank you for your order.",
    "Whitelist {IP_ADDRESS} in the firewall for the VPN.",
    "He paid with {CREDIT_CARD} at the hotel in {LOCATION}.",
    "Update the payroll record: IBAN {IBAN_CODE}, email {EMAIL_ADDRESS}.",
    "Text me at {PHONE_NUMBER} when you land in {LOCATION}.",
    # no personal data: what a detector should leave alone
    "Order 48213 shipped in 3 days and costs 129.99 dollars.",
    "Version 2.4.1 fixes the memory leak in the parser.",
    "Add 15 and 27, then divide the result by 6.",
    "The meeting is at 10:30 in room 4B.",
    "Write a function that returns the nth Fibonacci number.",
    "Explain how an IBAN check digit is computed.",
    "What is the difference between a credit card and a debit card?",
    "Sort the list [5, 3, 9, 1] in ascending order.",
)


def fake_values(fake, rng: random.Random) -> dict:
    phone_formats = ("###-###-####", "(###) ###-####", "+1 ### ### ####", "###.###.####")
    return {
        "PERSON": fake.name,
        "EMAIL_ADDRESS": fake.email,
        "PHONE_NUMBER": lambda: fake.numerify(rng.choice(phone_formats)).replace("(0", "(2").replace("+1 0", "+1 2")
        if rng.random() < 0.5 else fake.phone_number(),
        "CREDIT_CARD": fake.credit_card_number,
        "IBAN_CODE": fake.iban,
        "IP_ADDRESS": lambda: fake.ipv4() if rng.random() < 0.8 else fake.ipv6(),
        "LOCATION": lambda: rng.choice((fake.city, fake.country, fake.state))(),
        "US_SSN": fake.ssn,
    }


def pii_dataset(n: int, seed: int) -> list[tuple[str, list[tuple[str, int, int]]]]:
    from faker import Faker

    Faker.seed(seed)
    fake = Faker("en_US")
    rng = random.Random(seed)
    gen = fake_values(fake, rng)
    out = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        text, gold, rest = "", [], template
        while "{" in rest:
            before, _, after = rest.partition("{")
            slot, _, rest = after.partition("}")
            text += before
            value = gen[slot]()
            gold.append((slot, len(text), len(text) + len(value)))
            text += value
        out.append((text + rest, gold))
    return out


def score_pii(guard: RulesGuard, data, exact: bool = False) -> dict:
    tp, fp, fn = Counter(), Counter(), Counter()
    verdicts = []
    for start in range(0, len(data), 32):
        verdicts += guard.check([GuardInput(t) for t, _ in data[start:start + 32]])
    for (text, gold), v in zip(data, verdicts):
        preds = [(f.type, f.start, f.end) for f in v.pii if f.type in ENTITIES]
        used = set()
        for g in gold:
            hit = next((j for j, p in enumerate(preds) if j not in used and p[0] == g[0]
                        and ((p[1], p[2]) == (g[1], g[2]) if exact else p[1] < g[2] and g[1] < p[2])), None)
            if hit is None:
                fn[g[0]] += 1
            else:
                used.add(hit)
                tp[g[0]] += 1
        for j, p in enumerate(preds):
            if j not in used:
                fp[p[0]] += 1

    def prf(t, p, n):
        precision = t / (t + p) if t + p else 0.0
        recall = t / (t + n) if t + n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": t + n}

    out = {e: prf(tp[e], fp[e], fn[e]) for e in ENTITIES}
    for name, group in (("micro_pattern_entities", PATTERN_ENTITIES), ("micro_all", ENTITIES)):
        out[name] = prf(sum(tp[e] for e in group), sum(fp[e] for e in group), sum(fn[e] for e in group))
    return out


# --- secrets -----------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def secret_dataset(n_per_kind: int, seed: int) -> list[tuple[str, str, int, int]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rng = random.Random(seed)
    upper_digits = string.ascii_uppercase + string.digits
    alnum = string.ascii_letters + string.digits

    def pick(chars, k):
        return "".join(rng.choice(chars) for _ in range(k))

    def jwt():
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps({"sub": str(rng.randrange(10**6)), "name": pick(string.ascii_lowercase, 6),
                                      "iat": 1700000000 + rng.randrange(10**6)}).encode())
        sig = _b64url(hmac.new(pick(alnum, 16).encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{sig}"

    def pem():
        if rng.random() < 0.5:
            key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
            fmt = serialization.PrivateFormat.TraditionalOpenSSL
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            fmt = rng.choice((serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8))
        return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode().strip()

    kinds = {
        "aws": lambda: rng.choice(("AKIA", "ASIA")) + pick(upper_digits, 16),
        "github": lambda: rng.choice(("ghp_", "gho_", "ghs_")) + pick(alnum, 36),
        "slack": lambda: f"xox{rng.choice('bpa')}-{pick(string.digits, 12)}-{pick(string.digits, 13)}-{pick(alnum, 24)}",
        "openai": lambda: f"sk-{rng.choice(('', 'proj-'))}{pick(alnum, 20)}T3BlbkFJ{pick(alnum, 20)}",
        "jwt": jwt,
        "pem": pem,
    }
    contexts = (
        "export SECRET=@KEY@", 'config = {"token": "@KEY@"}', "here is my key: @KEY@ can you check why it fails?",
        "curl -H 'Authorization: Bearer @KEY@' https://api.example.com/v1/me", "@KEY@",
        "I accidentally committed @KEY@ to the repo, what now?",
    )
    pem_contexts = ("@KEY@", "key.pem contains:\n@KEY@\nthanks", "Why does ssh reject this key?\n@KEY@")
    out = []
    for kind, make in kinds.items():
        for i in range(n_per_kind):
            value = make()
            context = rng.choice(pem_contexts) if kind == "pem" else contexts[i % len(contexts)]
            start = context.index("@KEY@")
            out.append((kind, context.replace("@KEY@", value), start, start + len(value)))
    return out


def score_secrets(guard: RulesGuard, data) -> dict:
    found, total = Counter(), Counter()
    for kind, text, start, end in data:
        total[kind] += 1
        scan = guard.scan([GuardInput(text)])[0]
        if any(f.start <= start + 4 and f.end >= end - 4 for f in scan.secrets):
            found[kind] += 1
    out = {k: round(found[k] / total[k], 4) for k in total}
    out["all"] = round(sum(found.values()) / sum(total.values()), 4)
    return out


def secrets_false_positives(guard: RulesGuard, limit: int | None) -> dict:
    from railguard.train.data import read_rows

    rows = read_rows(CoreSettings.from_env().data_dir, "benign_instructions")[:limit]
    flagged, kinds, start = 0, Counter(), time.perf_counter()
    for r in rows:
        x = GuardInput(r["prompt"], response=r.get("response") or None)
        scan = guard.scan([x])[0]
        if scan.secrets:
            flagged += 1
            kinds.update(f.type for f in scan.secrets)
    return {"rows": len(rows), "rows_with_a_secret": flagged, "false_positive_rate": round(flagged / len(rows), 5),
            "by_type": dict(kinds), "ms_per_row": round((time.perf_counter() - start) * 1000 / len(rows), 3)}


# --- latency -----------------------------------------------------------------------------------------

LATENCY_TEXT = ("Hi, I'm Dana Whitfield from accounting. Please update my payroll email to "
                "dana.whitfield@example.com and call me at 415-555-0172 if anything is unclear. Thanks!")


def _without_spinning(guard) -> None:
    """Rebuilds the encoder's session with onnxruntime's idle spinning off: its worker threads otherwise
    busy-wait after each run and take the two cores from the PII scan that follows (an experiment for the
    encoder's settings, which live in railguard.models.encoder)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.intra_op_num_threads = CoreSettings.from_env().threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = guard.model_dir / guard.manifest["encoder"]["onnx"]
    guard.encoder.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def latency(runs: int, no_spin: bool = False) -> dict:
    text = (LATENCY_TEXT + " " * 200)[:200]
    embedded = railguard.load_guard("embedded")
    if no_spin:
        _without_spinning(embedded)
    policy = {"pii": {"action": "redact"}, "secrets": {"action": "block"}}
    guarded = PolicyGuard(embedded, policy)
    rules = guarded.rules
    x = [GuardInput(text)]
    for g in (embedded, guarded):
        for _ in range(10):
            g.check(x)
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):  # interleaved, so background load hits both alike
        for name, fn in (("embedded", lambda: embedded.check(x)), ("embedded+policy+pii", lambda: guarded.check(x)),
                         ("rules scan alone", lambda: rules.scan(x))):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    out = {name: {"p50_ms": round(statistics.median(v), 2),
                  "p95_ms": round(sorted(v)[int(0.95 * (len(v) - 1))], 2)} for name, v in times.items()}
    out["overhead_p50_ms"] = round(out["embedded+policy+pii"]["p50_ms"] - out["embedded"]["p50_ms"], 2)
    out["text_chars"] = len(text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--secrets-per-kind", type=int, default=60)
    parser.add_argument("--benign-limit", type=int, default=None, help="benign_instructions rows (default: all)")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--exact", action="store_true", help="also score exact span matches")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pii_eval.json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    guard = RulesGuard(entities=list(ENTITIES))
    pii_data = pii_dataset(args.sentences, args.seed)
    results: dict = {"sentences": len(pii_data), "entities_in_gold": sum(len(g) for _, g in pii_data),
                     "pii_threshold": guard.threshold}
    results["pii"] = score_pii(guard, pii_data)
    if args.exact:
        results["pii_exact_spans"] = score_pii(guard, pii_data, exact=True)
    secret_data = secret_dataset(args.secrets_per_kind, args.seed)
    results["secrets_recall"] = score_secrets(guard, secret_data)
    results["secrets_keys"] = len(secret_data)
    results["secrets_false_positives"] = secrets_false_positives(guard, args.benign_limit)
    results["latency_200_chars"] = latency(args.latency_runs)
    results["latency_200_chars_onnx_spinning_off"] = latency(args.latency_runs, no_spin=True)
    results["seconds"] = round(time.perf_counter() - started, 1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"PII: {results['sentences']} sentences, {results['entities_in_gold']} entities (overlap match)\n")
    print("| entity | precision | recall | F1 | support |\n|---|---|---|---|---|")
    for name, m in results["pii"].items():
        print(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    print(f"\nsecrets recall ({len(secret_data)} keys): " +
          ", ".join(f"{k} {v:.3f}" for k, v in results["secrets_recall"].items()))
    fp = results["secrets_false_positives"]
    print(f"secrets false positives on benign_instructions: {fp['rows_with_a_secret']}/{fp['rows']} rows "
          f"= {fp['false_positive_rate']:.2%} ({fp['by_type']})")
    for key, label in (("latency_200_chars", "as shipped"), ("latency_200_chars_onnx_spinning_off",
                                                              "onnxruntime spinning off")):
        lat = results[key]
        print(f"latency, 200-character text, {label} (p50 / p95 ms): " + ", ".join(
            f"{k} {v['p50_ms']:.1f} / {v['p95_ms']:.1f}" for k, v in lat.items() if isinstance(v, dict)) +
            f"; overhead p50 {lat['overhead_p50_ms']:.1f} ms")
    print(f"({results['seconds']} s; {args.out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
