//! The pages' two languages: English and Simplified Chinese, chosen by `?lang=`, then the
//! `qrpark_lang` cookie (set by `?lang=`), then `Accept-Language`, then English. The phone
//! page's texts are here, the warden page's in `warden_text.rs`.

use serde_json::{Map, Value};

/// A language the page speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// The cookie that remembers a language picked on the page.
pub const COOKIE: &str = "qrpark_lang";

impl Lang {
    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The value of `?lang=` and of the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The other language, offered as the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    /// A `?lang=` or cookie value: `en`, `zh`, or a tag starting with either.
    pub fn parse(value: &str) -> Option<Lang> {
        let primary = value.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The best of our languages for an `Accept-Language` header (RFC 9110 §12.5.4):
    /// the highest `q` wins, earlier entries win ties; `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, f32)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// The language for a request: the query, then the cookie, then the header.
    pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| accept.and_then(Lang::from_accept_language))
            .unwrap_or(Lang::En)
    }

    /// The text for `key`; `?` when missing (a test keeps the tables complete).
    pub fn t(self, key: &str) -> &'static str {
        all_messages()
            .find(|(k, _, _)| *k == key)
            .map(|(_, en, zh)| match self {
                Lang::En => *en,
                Lang::Zh => *zh,
            })
            .unwrap_or("?")
    }

    /// Every `js.*` message, for the phone page's script (embedded as JSON, not executed).
    pub fn js_messages(self) -> Value {
        self.script_messages("js.")
    }

    /// Every message whose key starts with `prefix`, without it: what one page's script
    /// reads (embedded as JSON, not executed).
    pub fn script_messages(self, prefix: &str) -> Value {
        let mut map = Map::new();
        for (key, en, zh) in all_messages() {
            if let Some(short) = key.strip_prefix(prefix) {
                let text = match self {
                    Lang::En => en,
                    Lang::Zh => zh,
                };
                map.insert(short.to_owned(), Value::String((*text).to_owned()));
            }
        }
        Value::Object(map)
    }
}

/// Every message of every page.
fn all_messages() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    MESSAGES
        .iter()
        .chain(super::warden_text::MESSAGES)
        .chain(crate::http::console::text::MESSAGES)
}

/// (key, English, Simplified Chinese). `{..}` placeholders are filled by the caller.
const MESSAGES: &[(&str, &str, &str)] = &[
    ("title", "Parking space {space}", "车位 {space}"),
    ("language", "Language", "语言"),
    ("space", "Space", "车位"),
    ("genuine_title", "Genuine parking code", "真实有效的停车码"),
    (
        "genuine_body",
        "qrpark checked this code's digital signature: it was issued by the operator of this car park.",
        "qrpark 已核验此码的数字签名：它由本停车场的运营方签发。",
    ),
    (
        "genuine_address",
        "Your browser's address bar must show:",
        "浏览器地址栏必须显示：",
    ),
    (
        "genuine_warn",
        "If it shows any other address, do not pay.",
        "如果显示其他地址，请不要付款。",
    ),
    (
        "status_free",
        "Free: you can park here",
        "空闲：可以在此停车",
    ),
    (
        "status_occupied",
        "Occupied: someone is parked here now",
        "已占用：此车位正在使用中",
    ),
    (
        "status_out",
        "Out of service: parking cannot start here",
        "暂停使用：不能在此开始停车",
    ),
    ("prices", "Prices", "收费标准"),
    (
        "no_tariff",
        "No prices are published yet, so parking cannot start here.",
        "尚未公布收费标准，暂不能在此停车。",
    ),
    ("calc_title", "What will I pay?", "我要付多少？"),
    ("calc_label", "If I leave at", "如果我在此时离开"),
    ("calc_button", "Work it out", "计算"),
    ("park_title", "Park here", "在此停车"),
    (
        "signin_why",
        "Sign in with your city identity: the fee is paid from your city account when you stop.",
        "用城市身份登录：结束停车时从您的城市账户扣费。",
    ),
    (
        "signin_city",
        "Sign in with city identity",
        "用城市身份登录",
    ),
    ("signin_demo", "Sign in (demo driver)", "登录（演示司机）"),
    (
        "signin_none",
        "Sign-in is not set up on this server yet.",
        "此服务器尚未配置登录。",
    ),
    ("signed_in", "Signed in.", "已登录。"),
    ("sign_out", "Sign out", "退出登录"),
    ("start", "Start parking", "开始停车"),
    ("stop", "Stop parking and pay", "结束停车并付款"),
    ("parking_now", "You are parked", "正在停车"),
    ("elapsed", "Parked for", "已停时长"),
    ("fee_so_far", "Fee so far", "目前费用"),
    ("leave_by", "Leave by", "最晚离开"),
    ("receipt", "Receipt", "收据"),
    ("total", "Total", "合计"),
    ("started", "Started", "开始"),
    ("ended", "Ended", "结束"),
    ("period", "Period", "时段"),
    ("charged", "Charged", "收费"),
    ("reference", "Payment reference", "付款编号"),
    ("park_again", "Done", "完成"),
    (
        "noscript",
        "Starting and stopping parking needs JavaScript. The prices above are correct without it.",
        "开始和结束停车需要启用 JavaScript。以上收费标准仍然准确。",
    ),
    ("signing_in", "Signing you in…", "正在登录…"),
    ("back", "Back to the parking page", "返回停车页面"),
    (
        "forged_title",
        "Warning: this is not a genuine parking code",
        "警告：这不是真实的停车码",
    ),
    (
        "forged_body",
        "Its digital signature does not check out. Someone may have stuck a fake code here to take your money. Do not pay through it, and tell the car park's staff or the city.",
        "此码的数字签名无效，可能有人在此贴了假码骗取钱财。请不要通过它付款，并告知停车场工作人员或城市管理部门。",
    ),
    (
        "revoked_title",
        "This code has been replaced",
        "此码已被更换",
    ),
    (
        "revoked_body",
        "This code has been replaced: do not pay here, report it. Look for the space's current code.",
        "此码已被更换：请不要在此付款，并举报此码。请寻找该车位的新码。",
    ),
    (
        "unknown_title",
        "This code names no parking space",
        "此码对应的车位不存在",
    ),
    (
        "unknown_body",
        "The code is genuine, but its parking space no longer exists. Do not pay through it.",
        "此码是真的，但对应的车位已不存在。请不要通过它付款。",
    ),
    (
        "error_title",
        "Something went wrong on our side",
        "我们这边出了问题",
    ),
    (
        "error_body",
        "Nothing was charged. Please try again in a minute.",
        "没有产生任何费用。请稍后再试。",
    ),
    ("report", "What to do", "怎么办"),
    ("js.tomorrow", "tomorrow", "明天"),
    (
        "js.calc_result",
        "If you leave at {time} you pay {fee}.",
        "如果在 {time} 离开，需付 {fee}。",
    ),
    (
        "js.over_max",
        "That is longer than the longest stay allowed here.",
        "这超过了此处允许的最长停放时间。",
    ),
    (
        "js.err_occupied",
        "This space is already taken. Please choose another space.",
        "此车位已被占用，请选择其他车位。",
    ),
    (
        "js.err_revoked",
        "This code has been replaced: do not pay here, report it.",
        "此码已被更换：请不要在此付款，并举报此码。",
    ),
    (
        "js.err_invalid",
        "This is not a genuine parking code: do not pay here, report it.",
        "这不是真实的停车码：请不要在此付款，并举报此码。",
    ),
    (
        "js.err_expired",
        "Your sign-in has expired. Please sign in again.",
        "登录已过期，请重新登录。",
    ),
    (
        "js.err_network",
        "No network connection. Check your signal and try again; a repeated tap never starts or charges twice.",
        "没有网络连接。请检查信号后重试；重复点击不会重复开始或重复扣费。",
    ),
    (
        "js.err_out",
        "This space is out of service: parking cannot start here.",
        "此车位暂停使用，不能在此开始停车。",
    ),
    (
        "js.err_no_tariff",
        "No prices are published yet, so parking cannot start here.",
        "尚未公布收费标准，暂不能在此停车。",
    ),
    (
        "js.err_busy",
        "Still working on your last tap. Please wait a moment.",
        "正在处理您刚才的操作，请稍候。",
    ),
    (
        "js.err_state",
        "Sign-in did not complete. Please try again.",
        "登录未完成，请重试。",
    ),
    (
        "js.err_generic",
        "Something went wrong. Please try again.",
        "出了点问题，请重试。",
    ),
    (
        "js.settled",
        "Paid from your city account.",
        "已从您的城市账户扣款。",
    ),
    (
        "js.pending",
        "Payment is being processed by the city.",
        "城市支付系统正在处理付款。",
    ),
    ("js.hours", "h", "小时"),
    (
        "js.arrears",
        "The city's payment gateway refused this payment: you owe it. Pay it under “Unpaid parking fees”.",
        "城市支付网关拒绝了这笔付款：您仍欠此费用。请在“未付停车费”中支付。",
    ),
    (
        "js.review",
        "The city's payment office is checking whether this payment was charged; it will tell you the outcome.",
        "城市支付办公室正在核查这笔付款是否已扣款，会告知您结果。",
    ),
    ("arrears_title", "Unpaid parking fees", "未付停车费"),
    (
        "arrears_body",
        "The city's payment gateway refused these payments. Pay them to park again.",
        "城市支付网关拒绝了以下付款。付清后才能再次停车。",
    ),
    ("arrears_total", "Total owed", "欠费合计"),
    (
        "js.arrears_item",
        "{amount}, reference {reference}, refused {since}",
        "{amount}，付款编号 {reference}，拒绝于 {since}",
    ),
    ("js.pay", "Pay {amount}", "支付 {amount}"),
    (
        "js.pay_sent",
        "Sent: the city is processing the payment.",
        "已发送：城市支付系统正在处理。",
    ),
    ("js.pay_settled", "Paid.", "已支付。"),
    (
        "js.pay_refused",
        "Refused again by the city's payment gateway.",
        "城市支付网关再次拒绝。",
    ),
    (
        "js.arrears_clear",
        "Nothing is owed any more: you can start parking.",
        "已无欠费：可以开始停车。",
    ),
    (
        "js.err_arrears",
        "You have unpaid parking fees: pay them (below) before you start parking.",
        "您有未付的停车费：请先在下方支付，然后再开始停车。",
    ),
    (
        "js.err_in_review",
        "The city's payment office is checking whether this payment was already charged, so it is not sent again. It will tell you the outcome.",
        "城市支付办公室正在核查这笔付款是否已扣款，因此不会再次发送。核查结果会告知您。",
    ),
    (
        "js.refunded_total",
        "Refunded: {amount}",
        "已退款：{amount}",
    ),
    ("js.refund_pending", "on its way", "处理中"),
    ("js.refund_refunded", "refunded", "已退款"),
    (
        "js.refund_failed",
        "refused: nothing was given back",
        "被拒绝：未退款",
    ),
    (
        "js.refund_review",
        "being checked by the city",
        "城市核查中",
    ),
    ("refunds", "Refunds", "退款"),
    ("refund_amount", "Amount", "金额"),
    ("refund_reason", "Reason", "原因"),
    ("refund_status", "Status", "状态"),
    ("refund_date", "Date", "日期"),
    ("plate", "Plate", "车牌号"),
    ("plate_required", "required here", "此处必填"),
    ("plate_optional", "optional", "选填"),
    (
        "plate_help",
        "For example 沪A12345 or B123XYZ. Remembered on this phone only.",
        "例如 沪A12345 或 B123XYZ。只保存在这部手机上。",
    ),
    (
        "province_pick",
        "Chinese plate: pick the province",
        "选择省份简称",
    ),
    ("province_group", "Province abbreviations", "省份简称"),
    (
        "stop_at_label",
        "Stop automatically at (optional)",
        "自动结束时间（选填）",
    ),
    ("stops_at", "Stops by itself at", "自动结束于"),
    ("proof_title", "Proof of parking", "停车凭证"),
    (
        "proof_body",
        "Show this code to a warden: it proves you paid, even without a network. It renews itself every few minutes.",
        "向巡查员出示此码：即使没有网络也能证明您已付费。它每隔几分钟自动更新。",
    ),
    (
        "proof_alt",
        "QR code of your proof of parking",
        "停车凭证二维码",
    ),
    (
        "proof_text",
        "The proof as text (to copy)",
        "凭证文本（可复制）",
    ),
    ("copy", "Copy", "复制"),
    ("enforce_title", "Warden's check", "巡查核验"),
    ("enforce_open", "Open the warden's page", "打开巡查员页面"),
    ("enforce_driver", "Show the driver's page", "显示司机页面"),
    ("since", "Since", "开始于"),
    ("time_left", "Time left", "剩余时间"),
    ("js.proof_valid", "Valid until {time}.", "有效期至 {time}。"),
    (
        "js.proof_expired",
        "This proof has expired; it renews as soon as the phone has a network.",
        "此凭证已过期；手机联网后会自动更新。",
    ),
    ("js.copied", "Copied.", "已复制。"),
    (
        "js.err_plate_required",
        "Enter your vehicle's plate: this car park needs it.",
        "请输入车牌号：本停车场要求登记车牌。",
    ),
    (
        "js.err_plate_invalid",
        "That is not a plate: use 2 to 10 letters and digits, optionally after a province character (沪A12345).",
        "车牌号格式不对：应为 2 到 10 位字母和数字，可在前面加省份简称（沪A12345）。",
    ),
    (
        "js.err_stop_at",
        "The automatic stop must be after now and not after the latest time you may leave.",
        "自动结束时间必须晚于现在，且不晚于最晚离开时间。",
    ),
    (
        "js.err_too_many",
        "You already have as many active parking sessions as allowed: stop one first.",
        "您进行中的停车已达上限：请先结束一个。",
    ),
    (
        "js.err_forbidden",
        "This sign-in may not do that.",
        "此登录身份无权进行此操作。",
    ),
    ("js.paid", "Paid", "已付费"),
    ("js.unpaid", "Not paid", "未付费"),
    ("js.no_plate", "no plate given", "未登记车牌"),
    ("js.no_limit", "no time limit", "无时间限制"),
    ("js.left", "{time} (until {until})", "{time}（至 {until}）"),
    (
        "js.last_ended",
        "Last session ended at {time}.",
        "上一次停车结束于 {time}。",
    ),
    ("js.ended_driver", "Stopped by you.", "由您结束。"),
    (
        "js.ended_planned",
        "Stopped by itself at the time you planned.",
        "已按您设定的时间自动结束。",
    ),
    (
        "js.ended_max_stay",
        "Stopped by itself at the longest stay allowed.",
        "已在允许的最长停放时间自动结束。",
    ),
    (
        "js.ended_operator",
        "Stopped by the car park's operator.",
        "由停车场运营方结束。",
    ),
    ("receipt.title", "Parking receipt", "停车收据"),
    ("receipt.from", "From", "自"),
    ("receipt.to", "to", "至"),
    ("receipt.rule", "Rule", "规则"),
    ("receipt.period", "Period", "时段"),
    ("receipt.increments", "Increments", "计费单位"),
    ("receipt.amount", "Amount", "单价"),
    ("receipt.charged", "Charged", "收费"),
    ("receipt.total", "Total", "合计"),
    (
        "receipt.version",
        "Tariff version {version}. Every line can be recomputed by hand from the tariff.",
        "收费标准第 {version} 版。每一行都可以按收费标准手工复算。",
    ),
    ("receipt.settlement", "Settlement", "结算"),
    ("receipt.status.settled", "paid", "已支付"),
    (
        "receipt.status.pending",
        "on its way to the city's payment gateway",
        "正在发送至城市支付网关",
    ),
    ("receipt.status.failed", "failed", "失败"),
    (
        "receipt.status.arrears",
        "refused by the city's payment gateway: owed, to be paid again",
        "被城市支付网关拒绝：欠费，待重新支付",
    ),
    (
        "receipt.status.review",
        "being checked by the city's payment office (it may have been charged)",
        "城市支付办公室核查中（可能已扣款）",
    ),
    ("receipt.refunds", "Refunds", "退款"),
    ("receipt.refund_date", "Date", "日期"),
    ("receipt.refund_reason", "Reason", "原因"),
    ("receipt.refund_status", "Status", "状态"),
    ("receipt.refund_reference", "Reference", "编号"),
    ("receipt.refunded", "Refunded in total", "已退款合计"),
    ("receipt.refund.pending", "on its way", "处理中"),
    ("receipt.refund.refunded", "given back", "已退款"),
    (
        "receipt.refund.failed",
        "refused: nothing was given back",
        "被拒绝：未退款",
    ),
    (
        "receipt.refund.review",
        "being checked by the city's payment office",
        "城市支付办公室核查中",
    ),
    ("receipt.session", "Session", "停车记录"),
    ("receipt.plate", "Plate", "车牌"),
    ("js.minutes", "min", "分钟"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        let pick = Lang::from_accept_language;
        assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::Zh));
        assert_eq!(pick("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(pick("fr-FR, en;q=0.5, zh;q=0.7"), Some(Lang::Zh));
        assert_eq!(pick("zh;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(pick("fr, de"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("zh-Hans-CN"), Some(Lang::Zh));
    }

    #[test]
    fn the_query_wins_over_the_cookie_which_wins_over_the_header() {
        assert_eq!(
            Lang::negotiate(Some("zh"), Some("en"), Some("en")),
            Lang::Zh
        );
        assert_eq!(Lang::negotiate(None, Some("zh"), Some("en")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("xx"), None, Some("zh-CN")), Lang::Zh);
        assert_eq!(Lang::negotiate(None, None, None), Lang::En);
    }

    #[test]
    fn every_message_exists_in_both_languages_once() {
        let all: Vec<_> = all_messages().collect();
        for (i, (key, en, zh)) in all.iter().enumerate() {
            assert!(!en.is_empty() && !zh.is_empty(), "{key} is empty");
            assert!(all[i + 1..].iter().all(|(k, _, _)| k != key), "{key} twice");
            assert_eq!(en.matches('{').count(), zh.matches('{').count(), "{key}");
        }
        assert_eq!(Lang::Zh.t("start"), "开始停车");
        assert_eq!(Lang::En.js_messages()["tomorrow"], "tomorrow");
        assert_eq!(Lang::Zh.t("w.title"), "巡查员");
        assert!(Lang::En.script_messages("wjs.").get("tomorrow").is_none());
    }
}
