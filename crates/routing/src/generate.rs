//! A seeded generator of ticket histories: the fixture that tests and benchmarks route.
//!
//! Eight teams of very different sizes (support gets a third of all tickets, the Japanese desk
//! one in seventeen) receive tickets built from per-team phrases with slots (products, order
//! numbers, countries, amounts), padded with phrases every team sees ("we are on the pro plan",
//! "this is urgent") and noise (greetings, typos, filler). About one English ticket in eight
//! uses a phrase two teams share (a charge on a card: billing or security?), which no router
//! can always get right. The Korean and Japanese desks get tickets on every topic written in
//! Korean (often without spaces) or Japanese, and one in ten in English with only the `locale`
//! variable to tell. Variables (`product`, `plan`, `channel`, `locale`, sometimes `amount`)
//! lean towards each team without deciding it. About 10% of tickets were first assigned to the
//! wrong team and reassigned; `completed_by` is always the right team.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::history::TaskOutcome;

/// How one team's tickets look.
struct Team {
    label: &'static str,
    weight: f64,
    phrases: &'static [&'static str],
    /// Preferred values, drawn with probability `LEAN`; otherwise any value.
    products: &'static [&'static str],
    plans: &'static [&'static str],
    channels: &'static [&'static str],
    /// The language the team's own tickets are written in.
    language: Language,
}

#[derive(Clone, Copy, PartialEq)]
enum Language {
    English,
    Korean,
    Japanese,
}

const LEAN: f64 = 0.6;
const PRODUCTS: &[&str] = &[
    "desktop-app",
    "mobile-app",
    "cloud",
    "server",
    "hardware-kit",
];
const PLANS: &[&str] = &["free", "pro", "business", "enterprise"];
const CHANNELS: &[&str] = &["email", "chat", "phone"];
const COUNTRIES: &[&str] = &[
    "Germany", "Korea", "Japan", "Brazil", "Canada", "Kenya", "France",
];
const DEVICES: &[&str] = &[
    "iPhone",
    "Android phone",
    "laptop",
    "tablet",
    "Mac",
    "Windows PC",
];

const TEAMS: &[Team] = &[
    Team {
        label: "support",
        weight: 0.34,
        phrases: &[
            "the {product} crashes when I open a document",
            "error {code} when syncing files on my {device}",
            "the app is very slow since the last update",
            "notifications stopped working on my {device}",
            "I cannot upload attachments larger than 10 MB",
            "search does not find messages from last week",
            "the video call drops after a few minutes",
            "the desktop client shows a blank screen after login",
            "how do I export a channel history to pdf",
            "the calendar integration stopped syncing",
            "the {product} keeps asking me to reconnect",
            "screen sharing does not work in the browser",
        ],
        products: &["desktop-app", "mobile-app"],
        plans: &["pro", "business"],
        channels: &["chat"],
        language: Language::English,
    },
    Team {
        label: "billing",
        weight: 0.14,
        phrases: &[
            "I was charged twice for the {product} this month",
            "please refund the last invoice, the amount of {amount} is wrong",
            "invoice {num} shows the wrong VAT number",
            "how do I update the credit card used for payment",
            "the payment failed but the money left my bank account",
            "can I get a receipt for invoice {num}",
            "why did my bill go up after the {plan} renewal",
            "cancel the automatic renewal and refund the remaining days",
            "the invoice is addressed to the wrong company name",
            "our purchase order number must appear on the invoice",
        ],
        products: &["cloud"],
        plans: &["pro", "business"],
        channels: &["email"],
        language: Language::English,
    },
    Team {
        label: "accounts",
        weight: 0.11,
        phrases: &[
            "please change the email address on my account",
            "I want to delete my account and all my data",
            "add three new users to our workspace",
            "how do I transfer ownership of the workspace to a colleague",
            "my username is misspelled, please fix it",
            "I forgot my password and the reset link expired",
            "enable single sign-on for our team",
            "remove a former employee from our workspace",
            "merge my two accounts into one",
            "change my display name and profile photo",
        ],
        products: &["cloud", "mobile-app"],
        plans: &["business", "enterprise"],
        channels: &["email", "chat"],
        language: Language::English,
    },
    Team {
        label: "shipping",
        weight: 0.11,
        phrases: &[
            "where is my order {num}, it has not arrived yet",
            "the tracking number for order {num} does not work",
            "the {device} was delivered to the wrong address",
            "can you ship the hardware kit to {country}",
            "the courier left the package at the wrong door",
            "I need to change the delivery address for order {num}",
            "my parcel is stuck in customs in {country}",
            "how long does delivery to {country} take",
            "the box arrived damaged and a cable is missing",
        ],
        products: &["hardware-kit"],
        plans: &["free", "pro"],
        channels: &["email", "phone"],
        language: Language::English,
    },
    Team {
        label: "sales",
        weight: 0.09,
        phrases: &[
            "we would like a quote for {seats} seats on the {plan} plan",
            "can we schedule a demo of the {product} for our team",
            "do you offer discounts for non profit organisations",
            "we are comparing you with another vendor, what are the differences",
            "interested in upgrading to {plan}, who can I talk to",
            "do you have a reseller program in {country}",
            "we need a trial extension to finish our evaluation",
            "what is the price of the on premise {product} license",
        ],
        products: &["server", "cloud"],
        plans: &["free"],
        channels: &["phone"],
        language: Language::English,
    },
    Team {
        label: "security",
        weight: 0.07,
        phrases: &[
            "I received a phishing email that looks like it came from you",
            "someone logged into my account from {country}",
            "we want to report a vulnerability in the {product}",
            "please enforce two factor authentication for all our users",
            "an api token was leaked in a public repository, revoke it",
            "suspicious login alerts every night",
            "we need your SOC 2 report and penetration test summary",
            "a former employee still has access to sensitive files",
            "is data encrypted at rest in the {product}",
        ],
        products: &["server", "cloud"],
        plans: &["enterprise"],
        channels: &["email"],
        language: Language::English,
    },
    Team {
        label: "korea-desk",
        weight: 0.08,
        phrases: &[
            "결제가 두 번 되었어요",
            "환불 요청드립니다",
            "비밀번호를 재설정하고 싶어요",
            "로그인이 안돼요",
            "앱이 계속 종료됩니다",
            "배송이 아직 안 왔어요",
            "주문번호 {num} 배송 조회가 안 됩니다",
            "요금제를 {plan} 으로 변경하고 싶습니다",
            "계정이 해킹된 것 같아요",
            "세금계산서 발행 부탁드립니다",
            "파일 업로드가 실패합니다",
            "영업 담당자와 상담하고 싶어요",
        ],
        products: &[],
        plans: &[],
        channels: &["chat", "phone"],
        language: Language::Korean,
    },
    Team {
        label: "japan-desk",
        weight: 0.06,
        phrases: &[
            "請求書が二重に届きました",
            "返金をお願いします",
            "ログインできません",
            "パスワードを再設定したいです",
            "アプリが起動しません",
            "荷物がまだ届いていません",
            "注文番号{num}の配送状況を教えてください",
            "プランを{plan}に変更したいです",
            "アカウントが乗っ取られたかもしれません",
            "領収書を発行してください",
            "ファイルのアップロードに失敗します",
            "見積もりをお願いできますか",
        ],
        products: &[],
        plans: &[],
        channels: &["email"],
        language: Language::Japanese,
    },
];

/// Phrases two teams both receive: the ticket's team decides who completed it.
const AMBIGUOUS: &[(&str, &str, &str)] = &[
    (
        "billing",
        "shipping",
        "the package arrived broken and I want my money back for order {num}",
    ),
    (
        "billing",
        "security",
        "there is a charge on my card I do not recognise",
    ),
    (
        "accounts",
        "security",
        "I cannot log in and got a password reset email I did not ask for",
    ),
    (
        "sales",
        "billing",
        "how much does the {plan} plan cost per seat",
    ),
    (
        "sales",
        "billing",
        "can we get a discount if we pay yearly for {plan}",
    ),
    (
        "support",
        "accounts",
        "the app says my session expired and logs me out",
    ),
    (
        "support",
        "shipping",
        "the {device} I received does not turn on",
    ),
    (
        "accounts",
        "billing",
        "please move our subscription to another account",
    ),
];

const SHARED: &[&str] = &[
    "I already tried restarting.",
    "This is urgent for our team.",
    "Please help as soon as possible.",
    "We are on the {plan} plan.",
    "My account email has not changed.",
    "I contacted you last week about this order.",
    "It happens on my {device} too.",
    "Our admin asked me to write to you.",
    "Can you check the logs?",
    "Thanks for the quick help last time.",
];

const NOISE: &[&str] = &[
    "hi", "hello", "hey team", "thanks", "regards", "ok", "asap", "fyi", "btw", "pls", "recieve",
    "acount", "pasword", "invocie", "teh", "again", "still", "really", "today", "??",
];

const KOREAN_EXTRA: &[&str] = &[
    "안녕하세요",
    "빨리 확인 부탁드립니다",
    "감사합니다",
    "급합니다",
    "어제부터 그래요",
    "고객센터에 전화했는데 연결이 안 돼요",
];

const JAPANESE_EXTRA: &[&str] = &[
    "お世話になっております。",
    "よろしくお願いします。",
    "至急対応お願いします。",
    "昨日からです。",
    "確認していただけますか。",
];

/// `n` past tasks, the same for the same `seed`.
pub fn generate(n: usize, seed: u64) -> Vec<TaskOutcome> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total: f64 = TEAMS.iter().map(|t| t.weight).sum();
    (0..n).map(|_| ticket(&mut rng, total)).collect()
}

fn ticket(rng: &mut ChaCha8Rng, total_weight: f64) -> TaskOutcome {
    let team = pick_team(rng, total_weight);
    let writes_english = team.language == Language::English || rng.gen_bool(0.1);
    let text = if writes_english {
        english_text(rng, team)
    } else {
        asian_text(rng, team)
    };
    let mut variables = Map::new();
    let lean = |rng: &mut ChaCha8Rng, preferred: &[&'static str], all: &[&'static str]| {
        let from = if !preferred.is_empty() && rng.gen_bool(LEAN) {
            preferred
        } else {
            all
        };
        Value::from(pick(rng, from))
    };
    variables.insert("product".into(), lean(rng, team.products, PRODUCTS));
    variables.insert("plan".into(), lean(rng, team.plans, PLANS));
    variables.insert("channel".into(), lean(rng, team.channels, CHANNELS));
    let locale = match team.language {
        Language::Korean if rng.gen_bool(0.9) => "ko",
        Language::Japanese if rng.gen_bool(0.9) => "ja",
        _ if rng.gen_bool(0.04) => pick(rng, &["ko", "ja"]),
        _ => "en",
    };
    variables.insert("locale".into(), Value::from(locale));
    if matches!(team.label, "billing" | "sales") && rng.gen_bool(0.5) || rng.gen_bool(0.1) {
        variables.insert("amount".into(), Value::from(rng.gen_range(5..50_000)));
    }

    let completed_by = team.label.to_owned();
    let first_assigned = if rng.gen_bool(0.03) {
        None
    } else if rng.gen_bool(0.1) {
        let others: Vec<&str> = TEAMS
            .iter()
            .map(|t| t.label)
            .filter(|l| *l != team.label)
            .collect();
        Some(pick(rng, &others).to_owned())
    } else {
        Some(completed_by.clone())
    };
    TaskOutcome {
        text,
        variables,
        first_assigned,
        completed_by,
    }
}

fn pick_team(rng: &mut ChaCha8Rng, total_weight: f64) -> &'static Team {
    let mut x = rng.gen_range(0.0..total_weight);
    for team in TEAMS {
        if x < team.weight {
            return team;
        }
        x -= team.weight;
    }
    &TEAMS[0]
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

/// An English ticket on the team's topic: for the Korean and Japanese desks, any topic.
fn english_text(rng: &mut ChaCha8Rng, team: &Team) -> String {
    let topic = if team.language == Language::English {
        team
    } else {
        // The first six teams are the English-speaking ones.
        &TEAMS[rng.gen_range(0..6)]
    };
    let shared: Vec<&str> = AMBIGUOUS
        .iter()
        .filter(|(a, b, _)| *a == topic.label || *b == topic.label)
        .map(|(_, _, p)| *p)
        .collect();
    let phrase = if !shared.is_empty() && rng.gen_bool(0.12) {
        pick(rng, &shared)
    } else {
        pick(rng, topic.phrases)
    };
    let mut parts: Vec<String> = Vec::new();
    if rng.gen_bool(0.4) {
        parts.push(pick(rng, NOISE).to_owned());
    }
    parts.push(fill(rng, phrase));
    for _ in 0..rng.gen_range(0..3) {
        let phrase = pick(rng, SHARED);
        parts.push(fill(rng, phrase));
    }
    for _ in 0..rng.gen_range(0..3) {
        parts.push(pick(rng, NOISE).to_owned());
    }
    // The opening stays in front; the rest of a ticket comes in any order.
    if parts.len() > 2 {
        parts[1..].shuffle(rng);
    }
    parts.join(" ")
}

/// A Korean or Japanese ticket: one or two of the desk's phrases and a courtesy phrase, with
/// spaces often dropped in Korean.
fn asian_text(rng: &mut ChaCha8Rng, team: &Team) -> String {
    let extra = if team.language == Language::Korean {
        KOREAN_EXTRA
    } else {
        JAPANESE_EXTRA
    };
    let mut parts = Vec::new();
    if rng.gen_bool(0.5) {
        parts.push(pick(rng, extra).to_owned());
    }
    for _ in 0..rng.gen_range(1..3) {
        let phrase = pick(rng, team.phrases);
        parts.push(fill(rng, phrase));
    }
    if rng.gen_bool(0.5) {
        parts.push(pick(rng, extra).to_owned());
    }
    if rng.gen_bool(0.2) {
        parts.push(format!("error {}", rng.gen_range(100..999)));
    }
    let joiner = if team.language == Language::Japanese {
        ""
    } else {
        " "
    };
    let text = parts.join(joiner);
    if team.language == Language::Korean && rng.gen_bool(0.4) {
        text.replace(' ', "")
    } else {
        text
    }
}

/// The slots a phrase may hold.
const SLOTS: &[&str] = &[
    "{product}",
    "{plan}",
    "{num}",
    "{code}",
    "{amount}",
    "{seats}",
    "{country}",
    "{device}",
];

/// Fills a phrase's slots with random values.
fn fill(rng: &mut ChaCha8Rng, phrase: &str) -> String {
    let mut out = phrase.to_owned();
    for slot in SLOTS {
        while out.contains(slot) {
            let value = slot_value(rng, slot);
            out = out.replacen(slot, &value, 1);
        }
    }
    out
}

fn slot_value(rng: &mut ChaCha8Rng, slot: &str) -> String {
    match slot {
        "{product}" => pick(rng, PRODUCTS).replace('-', " "),
        "{plan}" => pick(rng, PLANS).to_owned(),
        "{num}" => rng.gen_range(100_000..999_999).to_string(),
        "{code}" => format!("E{}", rng.gen_range(100..999)),
        "{amount}" => format!("{} EUR", rng.gen_range(5..5_000)),
        "{seats}" => rng.gen_range(5..500).to_string(),
        "{country}" => pick(rng, COUNTRIES).to_owned(),
        _ => pick(rng, DEVICES).to_owned(),
    }
}
