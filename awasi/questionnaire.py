"""The satisfaction survey's questionnaire (Survei Kepuasan Masyarakat), as data.

The nine elements are those of PermenPAN-RB No. 14/2017, in the regulation's order
(U1 persyaratan ... U9 sarana dan prasarana); each question and its four answers
(1 worst ... 4 best) follow the sample questionnaire in the regulation's annex, in
Bahasa Indonesia, with an English translation. The annex's sample form asks about
facilities before complaint handling; we keep the element order of the regulation's
list (U8 complaint handling, U9 facilities), which is also the design's.

Respondent data are the regulation form's optional fields, each a closed list so no
free text about a person is ever stored (``age_group`` replaces the form's "umur").
"""

from __future__ import annotations

from dataclasses import dataclass

from awasi.ikm import ELEMENTS


@dataclass(frozen=True, slots=True)
class Element:
    code: str
    name_id: str
    name_en: str
    question_id: str
    question_en: str
    answers_id: tuple[str, str, str, str]
    answers_en: tuple[str, str, str, str]

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_id

    def question(self, locale: str) -> str:
        return self.question_en if locale.startswith("en") else self.question_id

    def answers(self, locale: str) -> tuple[str, str, str, str]:
        return self.answers_en if locale.startswith("en") else self.answers_id


QUESTIONNAIRE: tuple[Element, ...] = (
    Element("U1", "Persyaratan", "Requirements",
            "Bagaimana pendapat Saudara tentang kesesuaian persyaratan pelayanan dengan "
            "jenis pelayanannya?",
            "How well do the service's requirements fit the kind of service?",
            ("Tidak sesuai", "Kurang sesuai", "Sesuai", "Sangat sesuai"),
            ("Not appropriate", "Less appropriate", "Appropriate", "Very appropriate")),
    Element("U2", "Sistem, mekanisme dan prosedur", "System, mechanism and procedure",
            "Bagaimana pemahaman Saudara tentang kemudahan prosedur pelayanan di unit ini?",
            "How easy is the service procedure at this unit?",
            ("Tidak mudah", "Kurang mudah", "Mudah", "Sangat mudah"),
            ("Not easy", "Less easy", "Easy", "Very easy")),
    Element("U3", "Waktu penyelesaian", "Time to complete",
            "Bagaimana pendapat Saudara tentang kecepatan waktu dalam memberikan pelayanan?",
            "How fast was the service delivered?",
            ("Tidak cepat", "Kurang cepat", "Cepat", "Sangat cepat"),
            ("Not fast", "Less fast", "Fast", "Very fast")),
    Element("U4", "Biaya/tarif", "Cost/fee",
            "Bagaimana pendapat Saudara tentang kewajaran biaya/tarif dalam pelayanan?",
            "How fair is the cost or fee of the service?",
            ("Sangat mahal", "Cukup mahal", "Murah", "Gratis"),
            ("Very expensive", "Fairly expensive", "Cheap", "Free")),
    Element("U5", "Produk spesifikasi jenis pelayanan", "Service product as specified",
            "Bagaimana pendapat Saudara tentang kesesuaian produk pelayanan antara yang "
            "tercantum dalam standar pelayanan dengan hasil yang diberikan?",
            "How well did what you received match the product in the service standard?",
            ("Tidak sesuai", "Kurang sesuai", "Sesuai", "Sangat sesuai"),
            ("Not matching", "Less matching", "Matching", "Fully matching")),
    Element("U6", "Kompetensi pelaksana", "Staff competence",
            "Bagaimana pendapat Saudara tentang kompetensi/kemampuan petugas dalam "
            "pelayanan?",
            "How competent were the staff who served you?",
            ("Tidak kompeten", "Kurang kompeten", "Kompeten", "Sangat kompeten"),
            ("Not competent", "Less competent", "Competent", "Very competent")),
    Element("U7", "Perilaku pelaksana", "Staff conduct",
            "Bagaimana pendapat Saudara tentang perilaku petugas dalam pelayanan terkait "
            "kesopanan dan keramahan?",
            "How polite and friendly were the staff?",
            ("Tidak sopan dan ramah", "Kurang sopan dan ramah", "Sopan dan ramah",
             "Sangat sopan dan ramah"),
            ("Not polite or friendly", "Less polite and friendly", "Polite and friendly",
             "Very polite and friendly")),
    Element("U8", "Penanganan pengaduan, saran dan masukan",
            "Handling of complaints, suggestions and feedback",
            "Bagaimana pendapat Saudara tentang penanganan pengaduan pengguna layanan?",
            "How are service users' complaints handled?",
            ("Tidak ada", "Ada tetapi tidak berfungsi", "Berfungsi kurang maksimal",
             "Dikelola dengan baik"),
            ("There is none", "Exists but does not work", "Works, but not fully",
             "Well managed")),
    Element("U9", "Sarana dan prasarana", "Facilities and infrastructure",
            "Bagaimana pendapat Saudara tentang kualitas sarana dan prasarana?",
            "How good are the facilities and infrastructure?",
            ("Buruk", "Cukup", "Baik", "Sangat baik"),
            ("Poor", "Fair", "Good", "Very good")),
)
assert tuple(e.code for e in QUESTIONNAIRE) == ELEMENTS  # one order, everywhere
BY_CODE = {e.code: e for e in QUESTIONNAIRE}

# Optional respondent data: value -> (Indonesian, English).
AGE_GROUPS: dict[str, tuple[str, str]] = {
    "lt20": ("di bawah 20 tahun", "under 20"),
    "20-29": ("20-29 tahun", "20-29"),
    "30-39": ("30-39 tahun", "30-39"),
    "40-49": ("40-49 tahun", "40-49"),
    "50-59": ("50-59 tahun", "50-59"),
    "60plus": ("60 tahun ke atas", "60 or older"),
}
SEXES: dict[str, tuple[str, str]] = {
    "L": ("Laki-laki", "Male"),
    "P": ("Perempuan", "Female"),
}
EDUCATION: dict[str, tuple[str, str]] = {
    "sd": ("SD ke bawah", "Primary school or less"),
    "smp": ("SMP", "Junior secondary"),
    "sma": ("SMA", "Senior secondary"),
    "diploma": ("D1/D2/D3/D4", "Diploma"),
    "s1": ("S1", "Bachelor's degree"),
    "s2plus": ("S2 ke atas", "Master's degree or higher"),
}
OCCUPATIONS: dict[str, tuple[str, str]] = {
    "pns": ("PNS", "Civil servant"),
    "tni": ("TNI", "Armed forces"),
    "polri": ("POLRI", "Police"),
    "swasta": ("Swasta", "Private sector"),
    "wirausaha": ("Wirausaha", "Self-employed"),
    "pelajar": ("Pelajar/Mahasiswa", "Student"),
    "lainnya": ("Lainnya", "Other"),
}
RESPONDENT_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "age_group": AGE_GROUPS, "sex": SEXES, "education": EDUCATION,
    "occupation": OCCUPATIONS,
}


def label(options: dict[str, tuple[str, str]], value: str, locale: str) -> str:
    pair = options[value]
    return pair[1] if locale.startswith("en") else pair[0]
