"""Every text the machine shows, in zh-TW and en, keyed so tests and docs can refer to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOCALES = ("zh-TW", "en")

# key -> (zh-TW template, en template); templates use str.format fields.
TEXTS: dict[str, tuple[str, str]] = {
    "welcome": ("歡迎選購，請選擇商品或感應卡片", "Welcome - choose a product or tap your card"),
    "selected": ("{slot} {name_zh} NT${price}，請感應卡片", "{slot} {name_en} NT${price} - tap your card"),
    "card_read": ("餘額 NT${balance}，請選擇商品", "Balance NT${balance} - choose a product"),
    "vending": ("出貨中：{name_zh}", "Vending {name_en}..."),
    "vended": ("請取出商品，餘額 NT${balance}", "Please take your {name_en}. Balance NT${balance}"),
    "refunded": (
        "出貨失敗，已退款 NT${price}，餘額 NT${balance}",
        "Vend failed - NT${price} refunded. Balance NT${balance}",
    ),
    "refund_owed": (
        "出貨失敗，NT${price} 將於下次在本機感應時退回卡片（一週後校內各機皆可）",
        "Vend failed - NT${price} goes back to your card at its next tap here (any school machine after a week)",
    ),
    "reselect": ("請於 {seconds} 秒內另選商品", "Choose another product within {seconds} s"),
    "cancelled": ("交易已取消", "Transaction cancelled"),
    "timeout": ("逾時，交易已取消", "Timed out - transaction cancelled"),
    "card_unread": ("卡片移開太快，請將卡片放在感應區上", "Card moved away before it was read - hold it on the reader"),
    "door_open": ("維護中，暫停販售", "Service in progress - sales paused"),
    "service.technician": (
        "維修模式：稽核資料已匯出，補貨清單 {slots} 格；再感應一次或關門即結束",
        "Service mode: audit exported, {slots} slot(s) to refill - tap again or close the door when done",
    ),
    "service.close_door": ("維修完成：請關上機門以恢復販售", "Visit done - close the door to resume sales"),
    "out_of_order": ("故障，暫停販售：{detail}", "Out of order - sales stopped: {detail}"),
    "vend_in_progress": ("出貨中，請稍候", "Vend in progress - please wait"),
    # denial reasons (also listed in docs/denials.md)
    "denied.lunch_lockout": (
        "{start}–{end} 不販售{category_zh}給{profile_zh}",
        "No {category_en} for {profile_en}s between {start} and {end}",
    ),
    "denied.not_permitted": ("此商品不開放{profile_zh}購買", "This product is not sold to {profile_en}s"),
    "denied.insufficient_funds": (
        "餘額不足：需 NT${price}，餘額 NT${balance}",
        "Insufficient funds: NT${price} needed, balance NT${balance}",
    ),
    "denied.sold_out": ("{slot} 已售完", "{slot} is sold out"),
    "denied.slot_disabled": ("{slot} 暫停販售", "{slot} is not available"),
    "denied.unknown_slot": ("沒有 {slot} 這個選項", "There is no selection {slot}"),
    "denied.unknown_card": ("無法辨識此卡片", "Card not recognised"),
    "denied.out_of_service": ("暫停服務", "Out of service"),
    "denied.card_removed": (
        "卡片已移開，扣款未完成，請重新感應",
        "Card moved away before payment completed - tap again",
    ),
    "denied.not_compliant": ("不符校園食品規範：{detail_zh}", "Not allowed on campus - {detail_en}"),
    "denied.card_not_linked": ("此卡未開通支付功能", "This card is not enabled for payment"),
    "denied.card_blocked": (
        "此卡已掛失，無法使用，請洽學校",
        "This card was reported lost and is blocked - please see the school office",
    ),
    "denied.hotlist_stale": (
        "暫時無法確認卡片狀態，請稍後再試",
        "This machine cannot check cards against the lost-card list right now - try again later",
    ),
    "denied.offline_limit": (
        "無法連線發卡機構，離線每日上限 NT${limit}（今日離線已用 NT${spent}）",
        "The card issuer cannot be reached: offline limit NT${limit} a day (spent offline today NT${spent})",
    ),
    "denied.period_limit": (
        "超過家長設定{period_zh}時段上限 NT${limit}（本時段已用 NT${spent}）",
        "Over the {period_en} limit set by a guardian: NT${limit} (spent this period NT${spent})",
    ),
    "denied.guardian_limit": (
        "超過家長設定每日上限 NT${limit}（今日已用 NT${spent}）",
        "Over the daily limit set by a guardian: NT${limit} (spent today NT${spent})",
    ),
    "denied.guardian_blocked": ("家長已限制購買此類商品", "A guardian has blocked this kind of product"),
    "denied.allergen_blocked": (
        "含有家長設定避免的過敏原：{allergen_zh}",
        "Contains an allergen a guardian asked to avoid: {allergen_en}",
    ),
    "privacy": (
        "隱私說明：本機不記錄姓名；廠商只看到每次購買的代號，看不到卡號，發卡機構只收到每日金額。"
        "查詢或刪除個人資料，請洽學校：{contact}",
        "Privacy: this machine keeps no names; the vendor sees a one-visit code, never your card number, and "
        "the card issuer gets daily totals only. To see or delete your data, ask the school: {contact}",
    ),
}

# Taiwan's 11 allergen labelling categories as a label names them (食品過敏原標示規定; docs/rules.md)
ALLERGEN_NAMES: dict[str, tuple[str, str]] = {
    "crustacea": ("甲殼類", "crustacea"),
    "mango": ("芒果", "mango"),
    "peanut": ("花生", "peanut"),
    "milk": ("牛奶、羊奶", "milk"),
    "egg": ("蛋", "egg"),
    "nuts": ("堅果類", "nuts"),
    "sesame": ("芝麻", "sesame"),
    "gluten": ("含麩質之穀物", "cereals containing gluten"),
    "soybean": ("大豆", "soybean"),
    "fish": ("魚類", "fish"),
    "sulphites": ("亞硫酸鹽類", "sulphites"),
}

# the periods of a school day as schools commonly name them; a period the school names otherwise shows its name
PERIOD_NAMES: dict[str, tuple[str, str]] = {
    "breakfast": ("早餐", "breakfast"),
    "morning_recess": ("上午下課", "morning recess"),
    "lunch": ("午餐", "lunch"),
    "after_school": ("放學後", "after-school"),
}


def period_names(period: str) -> tuple[str, str]:
    return PERIOD_NAMES.get(period, (period, period.replace("_", " ")))


# every reason a transaction can end with short of a sale: a denial's, or a cancelled session's
DENIAL_REASONS = tuple(key.removeprefix("denied.") for key in TEXTS if key.startswith("denied."))
CANCEL_REASONS = ("user_cancel", "timeout", "door_open", "fault")  # a cancelled session is not a denial

CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "drink": ("飲品", "drinks"),
    "dairy": ("乳品", "dairy"),
    "snack": ("點心", "snacks"),
    "bakery": ("烘焙食品", "bakery items"),
    "stationery": ("文具", "stationery"),
}

PROFILE_NAMES: dict[str, tuple[str, str]] = {
    "student": ("學生", "student"),
    "staff": ("教職員", "staff member"),
    "guest": ("訪客", "guest"),
}


@dataclass(frozen=True)
class Message:
    """A message rendered in every locale at once, so the display can show both lines."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    note: Message | None = None  # a second sentence shown with it (e.g. how long the card stays)

    def text(self, locale: str) -> str:
        zh, en = TEXTS[self.key]
        template = zh if locale == "zh-TW" else en
        text = template.format(**self.params)
        return f"{text} {self.note.text(locale)}" if self.note is not None else text

    @property
    def zh(self) -> str:
        return self.text("zh-TW")

    @property
    def en(self) -> str:
        return self.text("en")

    def both(self) -> str:
        return f"{self.zh} / {self.en}"
