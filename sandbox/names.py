"""Word lists for the sandbox data generator: names, programs, courses, departments, places.

Invented people only: names are drawn at random from common first and last names, emails use
the reserved ``example.edu`` domain, and phone numbers are random within real area codes so
that libphonenumber considers them valid (they are not anyone's known number).
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Aaliyah", "Aarav", "Abigail", "Adrian", "Aiden", "Aisha", "Alejandro", "Alexander",
    "Alexis", "Alicia", "Amara", "Amelia", "Ana", "Andre", "Andrew", "Angel", "Anthony",
    "Aria", "Ariana", "Ashley", "Austin", "Ava", "Benjamin", "Bianca", "Brandon", "Brianna",
    "Bryan", "Caleb", "Camila", "Carlos", "Carmen", "Charlotte", "Chloe", "Christian",
    "Christopher", "Chloé", "Daniel", "Daniela", "David", "Deja", "Destiny", "Diego",
    "Dylan", "Elena", "Elijah", "Elizabeth", "Emily", "Emma", "Eric", "Ethan", "Evelyn",
    "Fatima", "Gabriel", "Gabriela", "Grace", "Hannah", "Hao", "Hiroshi", "Ian", "Imani",
    "Isaac", "Isabella", "Isaiah", "Jacob", "Jada", "Jamal", "James", "Jasmine", "Jayden",
    "Jennifer", "Jessica", "Jesús", "Joanna", "John", "Jonathan", "Jordan", "José", "Joseph",
    "Joshua", "Juan", "Julia", "Justin", "Kaitlyn", "Kayla", "Keisha", "Kevin", "Kiara",
    "Kimberly", "Kyle", "Latoya", "Lauren", "Layla", "Liam", "Lily", "Linh", "Logan",
    "Lucas", "Lucía", "Luis", "Madison", "Malik", "Maria", "Mariana", "Marcus", "Mason",
    "Matthew", "Maya", "Mei", "Mia", "Michael", "Michelle", "Minh", "Mohammed", "Nadia",
    "Natalie", "Nathan", "Nia", "Noah", "Nour", "Olivia", "Omar", "Oscar", "Patrick",
    "Priya", "Rahul", "Rebecca", "Renée", "Ricardo", "Riley", "Rosa", "Ryan", "Samantha",
    "Samuel", "Sara", "Sebastian", "Sofia", "Sophia", "Stephanie", "Sung-min", "Taylor",
    "Thomas", "Trinity", "Tyler", "Valentina", "Victoria", "William", "Wei", "Xavier",
    "Yasmin", "Yusuf", "Zoe", "Zoë",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Adams", "Ahmed", "Ali", "Allen", "Alvarez", "Anderson", "Baker", "Banks", "Bell",
    "Bennett", "Brooks", "Brown", "Bui", "Campbell", "Carter", "Castillo", "Chavez", "Chen",
    "Clark", "Collins", "Cook", "Cooper", "Cruz", "Davis", "Díaz", "Do", "Edwards", "Evans",
    "Flores", "Foster", "García", "Gomez", "Gonzalez", "Gray", "Green", "Gutierrez", "Hall",
    "Harris", "Hernández", "Hill", "Howard", "Hughes", "Jackson", "James", "Jenkins",
    "Johnson", "Jones", "Kaur", "Khan", "Kim", "King", "Le", "Lee", "Lewis", "Li", "Lopez",
    "Martin", "Martinez", "Mendoza", "Miller", "Mitchell", "Moore", "Morales", "Morgan",
    "Morris", "Murphy", "Myers", "Nelson", "Nguyen", "Nguyễn", "O'Brien", "O'Connor",
    "Okafor", "Ortiz", "Park", "Parker", "Patel", "Perez", "Peterson", "Phillips", "Pham",
    "Powell", "Price", "Ramirez", "Reed", "Reyes", "Richardson", "Rivera", "Roberts",
    "Robinson", "Rodriguez", "Rogers", "Ross", "Russell", "Sanchez", "Sanders", "Scott",
    "Shah", "Silva", "Singh", "Smith", "Stewart", "Sullivan", "Tanaka", "Taylor", "Thomas",
    "Thompson", "Torres", "Tran", "Turner", "Van der Berg", "Walker", "Ward", "Washington",
    "Watson", "White", "Williams", "Wilson", "Wood", "Wright", "Wu", "Yang", "Young",
    "Zhang", "Smith-Jones", "De La Cruz",
)  # fmt: skip

#: Preferred names: a nickname for some first names, otherwise an unrelated chosen name.
NICKNAMES: dict[str, str] = {
    "Alexander": "Alex", "Alexis": "Lexi", "Abigail": "Abby", "Anthony": "Tony",
    "Benjamin": "Ben", "Christopher": "Chris", "Daniel": "Dan", "Elizabeth": "Liz",
    "Jennifer": "Jen", "Jonathan": "Jon", "Joseph": "Joe", "Joshua": "Josh", "Kimberly": "Kim",
    "Matthew": "Matt", "Michael": "Mike", "Nathan": "Nate", "Patrick": "Pat", "Rebecca": "Becca",
    "Samantha": "Sam", "Samuel": "Sam", "Stephanie": "Steph", "Thomas": "Tom",
    "Victoria": "Tori", "William": "Will", "Hiroshi": "Hiro", "Mohammed": "Mo",
}  # fmt: skip

#: (program, degree) pairs of a comprehensive community college.
PROGRAMS: tuple[tuple[str, str], ...] = (
    ("Accounting", "AAS"), ("Biology", "AS"), ("Business Administration", "AA"),
    ("Business Administration", "BS"), ("Computer Science", "AS"), ("Computer Science", "BS"),
    ("Criminal Justice", "AAS"), ("Cybersecurity", "Certificate"), ("Dental Hygiene", "AAS"),
    ("Early Childhood Education", "AAS"), ("Engineering Science", "AS"), ("English", "AA"),
    ("General Studies", "AA"), ("Graphic Design", "AAS"), ("HVAC Technology", "Certificate"),
    ("Liberal Arts", "AA"), ("Mathematics", "AS"), ("Medical Assisting", "Certificate"),
    ("Nursing", "ADN"), ("Nursing", "BSN"), ("Paralegal Studies", "AAS"), ("Psychology", "AA"),
    ("Psychology", "BA"), ("Radiologic Technology", "AAS"), ("Social Work", "BA"),
    ("Welding Technology", "Certificate"), ("Undeclared", "AA"),
)  # fmt: skip

SUBJECTS: tuple[str, ...] = (
    "ACC", "ART", "BIO", "BUS", "CHM", "CIS", "COM", "CRJ", "ECE", "ECO", "ENG", "HIS",
    "HUM", "MAT", "NUR", "PHY", "PSY", "SOC", "SPA", "WEL",
)  # fmt: skip

TAGS: tuple[str, ...] = (
    "first-gen", "pell", "veteran", "athlete", "international", "honors", "trio",
    "dual-enrollment", "esl", "student-parent", "probation", "dreamer", "online-only",
)  # fmt: skip

#: Risk levels and their share of students.
RISK_LEVELS: tuple[tuple[str, float], ...] = (
    ("low", 0.50), ("medium", 0.30), ("high", 0.15), ("critical", 0.05),
)  # fmt: skip

#: department → (share of staff, titles, whether its staff advise students)
DEPARTMENTS: dict[str, tuple[float, tuple[str, ...], bool]] = {
    "Advising": (0.35, ("Academic Advisor", "Senior Academic Advisor", "Director, Advising"),
                 True),
    "Counseling": (0.08, ("Counselor", "Personal Counselor"), True),
    "TRIO": (0.06, ("TRIO Advisor", "TRIO Coordinator"), True),
    "Financial Aid": (0.10, ("Financial Aid Counselor", "Financial Aid Officer"), False),
    "Registrar": (0.08, ("Registrar", "Records Specialist"), False),
    "Admissions": (0.10, ("Admissions Counselor", "Recruiter"), False),
    "Athletics": (0.05, ("Athletic Academic Coordinator", "Coach"), False),
    "Faculty": (0.18, ("Instructor", "Assistant Professor", "Professor"), False),
}  # fmt: skip

#: Real US area codes (geographic, in service), so numbers built on them are valid.
US_AREA_CODES: tuple[str, ...] = tuple(
    """201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229
    231 234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305
    307 308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 334 336 337 339 347
    351 352 360 361 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 425
    432 434 435 440 443 469 478 479 480 484 501 502 503 504 505 507 508 509 510 512 513 515
    516 517 518 520 530 540 541 551 559 561 562 563 567 570 571 573 574 575 580 585 586 601
    602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 626 630 631 636 641
    646 650 651 660 661 662 678 682 701 702 703 704 706 707 708 712 713 714 715 716 717 718
    719 720 724 727 731 732 734 740 754 757 760 763 765 770 772 773 774 775 781 785 786 801
    802 803 804 805 806 808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 847 848
    850 856 857 858 859 860 862 863 864 865 870 901 903 904 906 907 908 909 910 912 913 914
    915 916 917 918 919 920 925 928 931 936 937 940 941 947 949 951 952 954 956 970 971 972
    973 978 979 980 985 989""".split()  # noqa: SIM905 - a list literal would be 260 lines
)

#: Canadian area codes, for students from across the northern border.
CA_AREA_CODES: tuple[str, ...] = ("416", "647", "604", "778", "514", "438", "403", "613")

#: Free text found in real number fields.
FREE_TEXT: tuple[str, ...] = (
    "Decline to state", "none", "N/A", "NONE", "unknown", "no phone", "see mother",
    "n/a", "-", "000",
)  # fmt: skip
