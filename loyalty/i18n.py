"""The interface's own words in Danish and English (survey wording lives in forms/).

Two languages and a few dozen strings do not need gettext catalogues; a table keeps
each string's translations side by side, and a test checks none is missing.
"""

from __future__ import annotations

import typing as t

LANGUAGES = ("da", "en")

TEXTS: dict[str, dict[str, str]] = {
    "submit": {"da": "Send svar", "en": "Send answers"},
    "update": {"da": "Gem ændringer", "en": "Save changes"},
    "optional": {"da": "valgfrit", "en": "optional"},
    "required": {"da": "skal udfyldes", "en": "required"},
    "characters_max": {"da": "højst {max} tegn", "en": "at most {max} characters"},
    "thanks_title": {"da": "Tak for dit svar", "en": "Thank you for your answer"},
    "thanks_body": {
        "da": "Vi har modtaget dine svar og læser hver eneste kommentar.",
        "en": "We have received your answers and read every comment.",
    },
    "change_answer": {
        "da": "Du kan ændre dine svar indtil {date}.",
        "en": "You can change your answers until {date}.",
    },
    "change_link": {"da": "Ret mine svar", "en": "Change my answers"},
    "already_answered": {
        "da": "Du har allerede svaret. Du kan rette dine svar herunder.",
        "en": "You have already answered. You can change your answers below.",
    },
    "not_found_title": {"da": "Linket virker ikke", "en": "This link does not work"},
    "too_many_title": {"da": "Vent lidt", "en": "Please wait a moment"},
    "too_many_body": {
        "da": "Der er åbnet for mange links, der ikke virker, fra din forbindelse. "
        "Vent et minut, og prøv så igen.",
        "en": "Too many links that do not work were opened from your connection. "
        "Please wait a minute, then try again.",
    },
    "not_found_body": {
        "da": "Linket er udløbet eller ikke gyldigt. Tak fordi du ville svare.",
        "en": "The link has expired or is not valid. Thank you for wanting to answer.",
    },
    "error_required": {
        "da": "Besvar venligst dette spørgsmål.",
        "en": "Please answer this question.",
    },
    "error_scale": {
        "da": "Vælg et helt tal fra {min} til {max}.",
        "en": "Choose a whole number from {min} to {max}.",
    },
    "error_too_long": {
        "da": "Teksten er på {n} tegn; der er plads til {max}. Forkort den venligst.",
        "en": "The text is {n} characters long; there is room for {max}. Please shorten it.",
    },
    "error_unreadable": {
        "da": "Teksten indeholder tegn, vi ikke kan læse. Skriv den venligst igen.",
        "en": "The text contains characters we cannot read. Please type it again.",
    },
    "error_page_not_found": {
        "da": "Siden findes ikke. Tjek adressen, eller gå tilbage og prøv igen.",
        "en": "There is no such page. Check the address, or go back and try again.",
    },
    "error_expired_form": {
        "da": "Siden var for gammel til at gemme dine svar. Tjek dem og send igen.",
        "en": "The page was too old to save your answers. Please check them and send again.",
    },
    "error_form_check": {
        "da": "Vi kunne ikke bekræfte, at svaret kom fra undersøgelsens side, så intet er gemt "
        "endnu. Tjek dine svar og send igen.",
        "en": "We could not confirm that the answer came from the survey page, so nothing is "
        "saved yet. Please check your answers and send again.",
    },
    "error_too_large": {
        "da": "Svaret er for stort til at blive modtaget. Forkort teksten og prøv igen.",
        "en": "The answer is too large to receive. Please shorten the text and try again.",
    },
    "error_bad_request": {
        "da": "Vi kunne ikke læse forespørgslen. Gå tilbage og prøv igen.",
        "en": "We could not read the request. Please go back and try again.",
    },
    "error_too_many": {
        "da": "For mange forsøg fra din forbindelse. Vent et øjeblik, og prøv så igen.",
        "en": "Too many attempts from your connection. Please wait a moment, then try again.",
    },
    "too_many_answers_body": {
        "da": "Der er sendt for mange svar fra din forbindelse på kort tid. Dine svar er ikke "
        "gemt endnu: vent et minut, og send dem så igen.",
        "en": "Too many answers were sent from your connection in a short time. Your answers "
        "are not saved yet: please wait a minute, then send them again.",
    },
    "error_storage": {
        "da": "Vi kan ikke gemme dit svar lige nu. Dine svar står stadig herunder; prøv at "
        "sende igen om et øjeblik.",
        "en": "We cannot store your answer right now. Your answers are still below; please "
        "try sending again in a moment.",
    },
    "error_storage_page": {
        "da": "Vi kan ikke gemme noget lige nu. Prøv igen om et øjeblik.",
        "en": "We cannot store anything right now. Please try again in a moment.",
    },
    "try_again_kept": {
        "da": "Vi har ikke gemt dit svar endnu, men vi har husket det, du skrev. Tryk på "
        "knappen for at sende det igen.",
        "en": "Your answer is not saved yet, but what you typed is kept. Press the button to "
        "send it again.",
    },
    "try_again": {"da": "Prøv igen", "en": "Try again"},
    "storage_trouble": {
        "da": "Databasen er i problemer: den afviser at gemme (fuld eller skrivebeskyttet disk, "
        "eller en server, der afviser skrivninger). Kunders svar kan ikke gemmes, før det er "
        "løst.",
        "en": "The database is in trouble: it refuses to store anything (a full or read-only "
        "disk, or a server refusing writes). Customers' answers cannot be stored until it is "
        "fixed.",
    },
    "error_server": {
        "da": "Noget gik galt hos os. Dine tidligere svar er gemt; prøv igen om lidt.",
        "en": "Something went wrong on our side. Earlier answers are kept; please try again soon.",
    },
    "error_forbidden": {
        "da": "Du har ikke adgang til denne side.",
        "en": "You do not have access to this page.",
    },
    "error_method": {
        "da": "Siden kan ikke bruges på den måde.",
        "en": "This page cannot be used that way.",
    },
    "email_intro": {
        "da": "Hej {name},\n\ntak for dit køb hos {company}. Vil du hjælpe os med et hurtigt svar?",
        "en": "Hi {name},\n\nthank you for your purchase from {company}. Would you help us with a "
        "quick answer?",
    },
    "reminder_subject": {"da": "Påmindelse: {subject}", "en": "Reminder: {subject}"},
    "reminder_intro": {
        "da": "Hej {name},\n\nfor nogle dage siden bad vi om din mening om {company}. Har du "
        "et minut, vil vi meget gerne høre den.",
        "en": "Hi {name},\n\na few days ago we asked for your opinion of {company}. If you "
        "have a minute, we would love to hear it.",
    },
    "email_tap": {
        "da": "Tryk på et tal for at svare:",
        "en": "Tap a number to answer:",
    },
    "email_open": {"da": "Åbn undersøgelsen", "en": "Open the survey"},
    "email_expiry": {
        "da": "Linket virker indtil {date}.",
        "en": "The link works until {date}.",
    },
    "email_unsubscribe": {
        "da": "Vil du ikke have flere undersøgelser fra os? Afmeld her:",
        "en": "Don't want more surveys from us? Unsubscribe here:",
    },
    # The HTML part links a word, not a raw URL that would make the email wider than a phone.
    "email_unsubscribe_question": {
        "da": "Vil du ikke have flere undersøgelser fra os?",
        "en": "Don't want more surveys from us?",
    },
    "email_unsubscribe_link": {"da": "Afmeld", "en": "Unsubscribe"},
    # The reply that closes the loop on a case (templates/email/case_reply.*).
    "case_reply_subject": {
        "da": "Om din feedback til {company}",
        "en": "About your feedback to {company}",
    },
    "case_reply_greeting": {"da": "Hej {name},", "en": "Hi {name},"},
    "case_reply_body": {
        "da": "Tak fordi du fortalte os om din oplevelse, og undskyld at vi ikke levede op til "
        "dine forventninger.\n\nJeg har set på, hvad der skete, og vil gerne gøre det godt igen. "
        "Svar blot på denne mail, eller skriv, hvornår det passer dig, at jeg ringer.",
        "en": "Thank you for telling us about your experience, and I am sorry we did not live up "
        "to your expectations.\n\nI have looked into what happened and would like to put it "
        "right. Just reply to this email, or tell me when it suits you that I call.",
    },
    "case_reply_signoff": {"da": "Venlig hilsen\n{company}", "en": "Kind regards\n{company}"},
    "case_reply_footer": {
        "da": "Du får denne mail, fordi du svarede på vores undersøgelse. Svar direkte på den, "
        "så når dit svar frem til den, der skrev.",
        "en": "You are getting this email because you answered our survey. Reply to it and your "
        "answer reaches the person who wrote.",
    },
    "unsubscribe_title": {"da": "Afmeld undersøgelser", "en": "Unsubscribe from surveys"},
    "unsubscribe_question": {
        "da": "Vil du afmelde {email} fra vores undersøgelser?",
        "en": "Do you want to unsubscribe {email} from our surveys?",
    },
    "unsubscribe_button": {"da": "Ja, afmeld mig", "en": "Yes, unsubscribe me"},
    "unsubscribed": {
        "da": "{email} får ikke flere undersøgelser fra os.",
        "en": "{email} will not receive more surveys from us.",
    },
    # the scheduled report's email (staff read it in the schedule's language)
    "report_period": {"da": "{title}, {first} til {last}", "en": "{title}, {first} to {last}"},
    "report_before": {
        "da": "Perioden før ({first} til {last})",
        "en": "The period before ({first} to {last})",
    },
    "report_attached": {
        "da": "Hele rapporten er vedhæftet ({filename}): den kan åbnes i enhver browser, "
        "også uden net.",
        "en": "The whole report is attached ({filename}): it opens in any browser, also offline.",
    },
    "report_dashboard": {"da": "På dashboardet: {url}", "en": "On the dashboard: {url}"},
    "report_open_dashboard": {"da": "Åbn dashboardet", "en": "Open the dashboard"},
    "reading_none": {"da": "ingen svar", "en": "no answers"},
    "reading_few": {"da": "få svar, læs med forbehold", "en": "few answers, read with care"},
    "change_none": {
        "da": "intet at sammenligne: en af perioderne har ingen svar",
        "en": "nothing to compare: one of the periods has no answers",
    },
    "change_unknown": {
        "da": "for få svar til at skelne en ændring fra støj",
        "en": "too few answers to tell change from noise",
    },
    "change_rose": {"da": "steg {amount} point", "en": "rose {amount} points"},
    "change_fell": {"da": "faldt {amount} point", "en": "fell {amount} points"},
    "change_flat": {"da": "flyttede sig ikke", "en": "did not move"},
    "change_real": {
        "da": "ud over støjen (±{noise}): en reel ændring",
        "en": "beyond the noise (±{noise}): a real change",
    },
    "change_noise": {
        "da": "inden for støjen (±{noise}): ikke en reel ændring",
        "en": "within the noise (±{noise}): not a real change",
    },
}

#: Strings that depend on a count: (one, other) per language. Danish and English both use
#: the singular for exactly 1 and the plural otherwise (0 included), as gettext's
#: ``nplurals=2; plural=(n != 1)`` for both says.
PLURALS: dict[str, dict[str, tuple[str, str]]] = {
    "error_summary": {
        "da": (
            "Der er {n} fejl i dine svar. Ret venligst det markerede spørgsmål herunder.",
            "Der er {n} fejl i dine svar. Ret venligst de markerede spørgsmål herunder.",
        ),
        "en": (
            "There is {n} problem with your answers. Please see the marked question.",
            "There are {n} problems with your answers. Please see the marked questions.",
        ),
    },
}


def plural(key: str, language: str, n: int, /, **values: t.Any) -> str:
    """``key`` in ``language`` for a count of ``n`` (singular for 1), ``{n}`` filled in."""
    entry = PLURALS[key]
    one, other = entry.get(language) or entry["en"]
    return (one if n == 1 else other).format(n=n, **values)


def text(key: str, language: str, /, **values: t.Any) -> str:
    """The string ``key`` in ``language`` (English when unknown), with ``values`` filled in."""
    entry = TEXTS[key]
    template = entry.get(language) or entry["en"]
    return template.format(**values) if values else template


def format_date(value: t.Any, language: str) -> str:
    """A date as people write it: ``24. december 2026`` or ``24 December 2026``."""
    months = {
        "da": "januar februar marts april maj juni juli august september oktober november december",
        "en": "January February March April May June July August September October November "
        "December",
    }
    name = months.get(language, months["en"]).split()[value.month - 1]
    return (
        f"{value.day}. {name} {value.year}"
        if language == "da"
        else f"{value.day} {name} {value.year}"
    )


def best_language(accept: t.Any) -> str:
    """The visitor's preferred language from Accept-Language, Danish if they prefer neither."""
    return accept.best_match(LANGUAGES, default="da")
