"""Demo data: the 2026 edition as published, and a demo edition whose registration is open today."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from childcare.models import ChildcareBand
from registration.models import Booth, Edition, Option, Organisation, Session

TOKYO = timezone.get_default_timezone()

PUBLIC_CENTRES = [
    (
        "東京都教育相談センター",
        "Tokyo Metropolitan Education Counseling Center",
        Organisation.Category.PUBLIC_COUNSELING,
        "https://www.kyoiku-soudan.metro.tokyo.lg.jp/",
    ),
    (
        "東京都発達障害者支援センター",
        "Tokyo Developmental Disabilities Support Center",
        Organisation.Category.PUBLIC_DEVELOPMENT,
        "",
    ),
]
CAREER = (
    "保護者のためのキャリア相談（東京しごとセンター協力）",
    "Career counselling for parents",
    Organisation.Category.CAREER,
)

# Clearly fictional free schools and alternative learning places.
FREE_SCHOOLS = {
    "tama": [
        "フリースクールそよかぜ",
        "まなびの森ひだまり",
        "多摩川フリースペースこもれび",
        "学びの家はらっぱ",
        "オルタナティブスクールあおぞら",
        "たまのこ広場",
        "フリースクールみちくさ",
        "居場所カフェほっと",
        "ゆるやか学舎",
        "まなびば木もれ陽",
        "フリースクール風の丘",
        "こどもの家つむぎ",
        "デモクラティックスクールひかり",
        "学びの工房いちょう",
        "フリースペースのびのび",
        "野川こども塾",
        "アトリエ・スクールいろどり",
        "オンライン学習室つながる",
        "フリースクール虹のたね",
        "まちなか寺子屋",
        "自然学校どんぐり",
        "学びの居場所ふらっと",
        "シュタイナー学びの会たま",
        "フリースクールさくら坂",
        "子ども若者サポートひなた",
        "ホームエデュケーションの会",
        "フリースクール星の子",
    ],
    "center": [
        "フリースクールみなとの灯",
        "都心まなびラボ",
        "フリースペースあおば",
        "学びの庭かがやき",
        "オルタナティブスクール青い鳥",
        "こども未来スクエア",
        "フリースクールはなみずき",
        "居場所サロンてのひら",
        "まなびの港",
        "フリースクール空と海",
        "サードプレイスひろば",
        "学びの部屋ともしび",
        "デモクラティックスクールかぜ",
        "プログラミング学び舎コード",
        "フリースペースえがお",
        "下町こども塾",
        "アートの学校パレット",
        "オンラインフリースクールひらく",
        "フリースクール若葉",
        "都会の寺子屋",
        "探究の学校たねまき",
        "学びの居場所まんなか",
        "イエナプラン学びの会",
        "フリースクール銀杏並木",
        "子ども若者サポートあかり",
        "通信制高校進学相談ひろば",
        "フリースクール月の舟",
    ],
}


def _tokyo(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=TOKYO)


class Command(BaseCommand):
    help = "Load the 2026 edition and a demo edition whose registration is open today."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-admin", action="store_true", help="Do not create an admin user.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        self._edition(
            code="2026",
            opens=_tokyo(2025, 11, 14, 0, 0),
            closes=_tokyo(2025, 12, 17, 23, 59, 59),
            freeze=_tokyo(2025, 12, 18, 10, 0),
            draw=_tokyo(2025, 12, 22, 10, 0),
            dates={"tama": dt.date(2026, 1, 31), "center": dt.date(2026, 2, 7)},
            title=(
                "学校以外の多様な学びの場・居場所 セミナー 2026",
                "Diverse Learning Spaces and Safe Havens Outside School — 2026 seminar",
            ),
        )
        today = timezone.localdate()
        opened = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(0, 0), tzinfo=TOKYO)
        closes = dt.datetime.combine(
            today + dt.timedelta(days=14), dt.time(23, 59, 59), tzinfo=TOKYO
        )
        self._edition(
            code="demo",
            opens=opened,
            closes=closes,
            freeze=closes + dt.timedelta(hours=10),
            draw=closes + dt.timedelta(days=4, hours=10),
            dates={"tama": today + dt.timedelta(days=45), "center": today + dt.timedelta(days=52)},
            title=(
                "【デモ】学校以外の多様な学びの場・居場所 セミナー",
                "[Demo] Diverse Learning Spaces and Safe Havens Outside School",
            ),
        )
        self.stdout.write(self.style.SUCCESS("Demo data loaded: editions 2026 and demo."))
        if not options["no_admin"]:
            password = secrets.token_urlsafe(12)
            user, _ = get_user_model().objects.get_or_create(
                username="admin", defaults={"email": "admin@example.jp"}
            )
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            self.stdout.write(
                self.style.SUCCESS(f"Admin login: user 'admin', password '{password}' (at /admin/)")
            )

    def _edition(
        self,
        *,
        code: str,
        opens: dt.datetime,
        closes: dt.datetime,
        freeze: dt.datetime,
        draw: dt.datetime,
        dates: dict[str, dt.date],
        title: tuple[str, str],
    ) -> None:
        edition, _ = Edition.objects.update_or_create(
            code=code,
            defaults={
                "title_ja": title[0],
                "title_en": title[1],
                "registration_opens_at": opens,
                "registration_closes_at": closes,
                "freeze_at": freeze,
                "draw_at": draw,
            },
        )
        venues = {
            "tama": (
                "多摩会場",
                "Tama area",
                "多摩会場（東京都立川市）",
                "Tama venue (Tachikawa)",
                "東京都立川市（詳しい会場は当選のお知らせでご案内します）",
                "Tachikawa, Tokyo (details come with your result)",
                "JR中央線 立川駅から徒歩約10分",
                "About 10 minutes on foot from JR Tachikawa Station",
            ),
            "center": (
                "都心会場",
                "Central Tokyo",
                "都心会場（東京都新宿区）",
                "Central venue (Shinjuku)",
                "東京都新宿区（詳しい会場は当選のお知らせでご案内します）",
                "Shinjuku, Tokyo (details come with your result)",
                "都営大江戸線 都庁前駅から徒歩約5分",
                "About 5 minutes on foot from Tochomae Station (Oedo line)",
            ),
        }
        for session_code, date in dates.items():
            v = venues[session_code]
            start = dt.datetime.combine(date, dt.time(13, 30), tzinfo=TOKYO)
            session, _ = Session.objects.update_or_create(
                edition=edition,
                code=session_code,
                defaults={
                    "name_ja": v[0],
                    "name_en": v[1],
                    "date": date,
                    "venue_ja": v[2],
                    "venue_en": v[3],
                    "address_ja": v[4],
                    "address_en": v[5],
                    "access_ja": v[6],
                    "access_en": v[7],
                    "map_url": "https://www.openstreetmap.org/search?query="
                    + ("Tachikawa" if session_code == "tama" else "Tochomae"),
                    "promotion_deadline": start - dt.timedelta(days=5),
                },
            )
            Option.objects.update_or_create(
                session=session, kind=Option.Kind.VENUE, defaults={"capacity": 150}
            )
            Option.objects.update_or_create(
                session=session, kind=Option.Kind.ONLINE, defaults={"capacity": 300}
            )
            ChildcareBand.objects.update_or_create(
                session=session,
                code="0-2",
                defaults={
                    "label_ja": "6か月〜2歳",
                    "label_en": "6 months to 2 years",
                    "min_age_months": 6,
                    "max_age_months": 35,
                    "slots": 6,
                },
            )
            ChildcareBand.objects.update_or_create(
                session=session,
                code="3-5",
                defaults={
                    "label_ja": "3歳〜未就学児",
                    "label_en": "3 years to preschool",
                    "min_age_months": 36,
                    "max_age_months": None,
                    "slots": 10,
                },
            )
            self._booths(session)

    def _booths(self, session: Session) -> None:
        rows: list[tuple[str, str, str, str, str]] = [
            (ja, en, cat, url, "") for ja, en, cat, url in PUBLIC_CENTRES
        ]
        rows.append((CAREER[0], CAREER[1], CAREER[2], "", ""))
        for i, name in enumerate(FREE_SCHOOLS[session.code]):
            category = (
                Organisation.Category.ALTERNATIVE
                if i % 4 == 3
                else Organisation.Category.FREE_SCHOOL
            )
            rows.append(
                (
                    name,
                    "",
                    category,
                    "",
                    "小中学生の学びと居場所。見学・体験随時受付（架空の団体です）",
                )
            )
        for number, (ja, en, cat, url, desc) in enumerate(rows, start=1):
            org, _ = Organisation.objects.get_or_create(
                name_ja=ja,
                defaults={
                    "name_en": en,
                    "category": cat,
                    "website": url,
                    "description_ja": desc,
                    "description_en": "Learning and a safe place for school-age children. "
                    "Visits welcome. (Fictional organisation.)"
                    if desc
                    else "",
                },
            )
            Booth.objects.update_or_create(
                session=session, organisation=org, defaults={"number": number}
            )
