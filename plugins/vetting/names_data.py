"""Reference tables for name and address normalisation: nicknames, given names, honorifics,
suffixes, surname particles, corporate suffixes, US states and their neighbours.

All entries are lower-case ASCII (the form ``names.fold`` produces).
"""

from __future__ import annotations

# Canonical given name -> common nicknames and spelling variants. A nickname may belong to
# several canonical names (``al``: albert, alan, alfred, alexander); ``NICKNAME_TO_CANONICAL``
# inverts this table into sets.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "abigail": ("abby", "abbie", "gail"),
    "abraham": ("abe",),
    "albert": ("al", "bert", "bertie"),
    "alan": ("al", "allan", "allen"),
    "alexander": ("alex", "al", "sandy", "xander", "alec", "lex"),
    "alexandra": ("alex", "sandra", "sandy", "lexi", "alexa"),
    "alfred": ("al", "alf", "fred", "freddie"),
    "alice": ("allie", "ali"),
    "allison": ("allie", "ali", "alison"),
    "amanda": ("mandy", "manda"),
    "andrew": ("andy", "drew"),
    "angela": ("angie",),
    "anthony": ("tony", "ant"),
    "antonio": ("tony",),
    "arthur": ("art", "artie"),
    "barbara": ("barb", "babs", "barbie"),
    "benjamin": ("ben", "benny", "benji"),
    "bernard": ("bernie",),
    "beverly": ("bev",),
    "bradley": ("brad",),
    "bryan": ("brian",),
    "calvin": ("cal",),
    "catherine": ("cathy", "cath", "kate", "katie", "cat", "kathy", "katherine", "kathryn", "kathleen"),
    "charles": ("charlie", "chuck", "chas", "chaz", "chip"),
    "charlotte": ("charlie", "lottie"),
    "christina": ("chris", "tina", "christy", "kristina"),
    "christine": ("chris", "chrissy", "kristine", "christy"),
    "christopher": ("chris", "kit", "topher", "kristopher"),
    "clifford": ("cliff",),
    "cynthia": ("cindy",),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davey", "davy"),
    "deborah": ("debbie", "deb", "debra", "debby"),
    "dennis": ("denny",),
    "donald": ("don", "donny", "donnie"),
    "dorothy": ("dot", "dottie", "dolly"),
    "douglas": ("doug",),
    "edward": ("ed", "eddie", "ted", "teddy", "ned", "eddy"),
    "edwin": ("ed", "eddie"),
    "elizabeth": ("liz", "beth", "betty", "betsy", "lizzie", "eliza", "libby", "bess", "liza", "elisabeth"),
    "eleanor": ("ellie", "nell", "nora"),
    "emily": ("em", "emmy"),
    "eugene": ("gene",),
    "frances": ("fran", "frannie"),
    "francis": ("frank", "fran"),
    "frank": ("frankie",),
    "frederick": ("fred", "freddie", "fritz", "frederic"),
    "gabriel": ("gabe",),
    "gerald": ("gerry", "jerry"),
    "gregory": ("greg",),
    "harold": ("hal", "harry"),
    "harry": ("hal",),
    "henry": ("hank", "harry", "hal"),
    "herbert": ("herb", "bert"),
    "howard": ("howie",),
    "isaac": ("ike",),
    "jacob": ("jake", "jack"),
    "james": ("jim", "jimmy", "jamie", "jimbo"),
    "janet": ("jan",),
    "jeffrey": ("jeff", "geoffrey", "geoff"),
    "jennifer": ("jen", "jenny", "jenn", "jennie"),
    "jeremy": ("jerry",),
    "jerome": ("jerry",),
    "jessica": ("jess", "jessie"),
    "joanne": ("jo", "joann", "joanna"),
    "john": ("jack", "johnny", "jon"),
    "jonathan": ("jon", "jonny", "johnathan", "nathan"),
    "joseph": ("joe", "joey", "jos"),
    "josephine": ("jo", "josie"),
    "joshua": ("josh",),
    "judith": ("judy", "jude"),
    "katherine": ("kate", "katie", "kathy", "kat", "kay", "kitty"),
    "kenneth": ("ken", "kenny"),
    "kimberly": ("kim", "kimmy", "kimberley"),
    "lawrence": ("larry", "laurence"),
    "leonard": ("len", "lenny", "leo"),
    "louis": ("lou", "louie"),
    "margaret": ("maggie", "meg", "peggy", "marge", "margie", "greta", "madge", "peg"),
    "martin": ("marty",),
    "mary": ("molly", "polly", "mae", "mamie", "marie"),
    "matthew": ("matt", "matty"),
    "melissa": ("missy", "mel", "lissa"),
    "michael": ("mike", "mikey", "mick", "mickey", "mitch"),
    "michelle": ("shelly", "michele", "shelley"),
    "nathaniel": ("nate", "nat", "nathan"),
    "nicholas": ("nick", "nicky", "nico", "nicolas"),
    "nicole": ("nikki", "nicky", "nichole"),
    "oliver": ("ollie",),
    "pamela": ("pam",),
    "patricia": ("pat", "patty", "patsy", "trish", "tricia", "patti"),
    "patrick": ("pat", "paddy", "rick"),
    "peter": ("pete",),
    "philip": ("phil", "phillip", "pip"),
    "raymond": ("ray",),
    "rebecca": ("becky", "becca", "reba"),
    "richard": ("rich", "rick", "ricky", "dick", "rickey", "richie"),
    "robert": ("rob", "bob", "bobby", "robbie", "bert", "robby"),
    "roberta": ("bobbie", "bertie"),
    "ronald": ("ron", "ronnie", "ronny"),
    "rosemary": ("rose", "rosie"),
    "russell": ("russ", "rusty"),
    "samantha": ("sam", "sammy"),
    "samuel": ("sam", "sammy"),
    "sandra": ("sandy",),
    "sarah": ("sally", "sadie", "sara"),
    "stanley": ("stan",),
    "stephanie": ("steph", "stephany"),
    "stephen": ("steve", "stevie", "steven"),
    "steven": ("steve", "stevie", "stephen"),
    "susan": ("sue", "susie", "suzy", "suzanne"),
    "teresa": ("terry", "tess", "tessa", "theresa", "terri"),
    "terrence": ("terry", "terence"),
    "theodore": ("ted", "teddy", "theo"),
    "thomas": ("tom", "tommy", "thom"),
    "timothy": ("tim", "timmy"),
    "valerie": ("val",),
    "victoria": ("vicky", "tori", "vickie", "vicki"),
    "vincent": ("vince", "vinny"),
    "virginia": ("ginny", "ginger"),
    "walter": ("walt", "wally"),
    "william": ("bill", "will", "billy", "willy", "liam", "willie"),
    "zachary": ("zach", "zack"),
}

# Given names treated as "known": two different known names that are not nicknames of one another
# are different people (John is not a typo of Joan). Names outside this set are compared by string
# similarity (a typo, or a name the table does not know). Together with the names in NICKNAMES.
GIVEN_NAMES: frozenset[str] = frozenset(
    """
    aaron adam adrian adrienne agnes aileen aimee alana alberto alejandro alexis alfonso alicia alma
    alvin amber amos amy ana andre andrea andres angel angelica angelina anita ann anna anne annette
    annie antoinette april arlene armando arnold audrey austin barry beatrice becky belinda ben bernadette
    bernice bertha bessie beth bethany betty beulah bill billie blake blanca bob bonnie brandi brandon
    brenda brent brett bridget brittany brooke bruce bryce byron caleb cameron camille candace carl carla
    carlos carmen carol carole caroline carolyn carrie casey cecil cecilia cedric chad charlene chelsea
    cheryl chester claire clara clarence claude claudia clayton clifton clinton clyde cody colin colleen
    connie constance cora corey cory courtney craig crystal curtis daisy dale dallas damon dana danielle
    darlene darrell darren darryl dawn dean deanna debra delia della delores denise derek derrick desiree
    diana diane dianne dolores dominic dominique don donna dora doris dorothea drew duane dustin dwayne
    dwight earl ebony eddie edgar edith edna eduardo elaine ella ellen elmer eloise elsie elvira emanuel
    emma enrique eric erica erik erin ernest ernesto esther ethan ethel eunice eva evan evelyn everett
    faith fannie felicia felix fernando flora florence floyd forrest francisco freda gail garrett gary
    gayle gene geneva genevieve george georgia gerard gertrude gilbert gina glen glenda glenn gloria
    gordon grace grady grant gwendolyn hannah harriet harvey hazel heather hector heidi helen herman
    hilda holly hope horace hugh hunter ian ida inez ingrid irene iris irma isabel ivan jack jackie
    jackson jaime jamal jane janice janie jared jasmine jason javier jay jean jeanette jeanne jeannie
    jenna jeremiah jesse jesus jill jimmie joan joann joanna joel johanna johnnie jorge jose josefina
    joy joyce juan juanita julia julian julie june justin kara karen kari karl katrina kay kayla keith
    kelly kelvin kendra kent kerry kevin kirk kristen kristin kristy krystal kurt kyle lana lance
    latoya laura lauren laurie laverne leah lee leigh lena leo leon leona leroy leslie lester leticia
    lewis lillian lily linda lindsay lindsey lisa lloyd lois lola lonnie lora loretta lori lorraine
    louise lucas lucia lucille lucy luis luke luther lydia lyle lynda lynn mabel mack madeline mae
    malcolm mamie manuel marc marcia marco marcus margarita margie maria marian marianne marie marilyn
    mario marion marjorie mark marlene marsha marshall marvin maryann mattie maureen max maxine megan
    melanie melinda melvin mercedes meredith micheal miguel mildred milton minnie miriam misty mitchell
    mona monica morris muriel myra myrtle nadine nancy naomi natalie natasha neil nellie nelson nina
    noah noel nora norma norman olga olive olivia opal oscar owen pablo paige paula pauline pearl
    pedro penny percy perry phyllis preston priscilla rachel rafael ralph ramon ramona randall randy
    raul regina reginald rene renee rhonda ricardo rita roberto robin robyn rochelle rodney roger
    roland rolando ronnie rosa rosalie rose roxanne roy ruben ruby rudolph rudy rufus ruth ryan sabrina
    sally salvador sam sergio seth shane shannon sharon shawn sheila shelby sheri sherri sherry shirley
    sidney silvia simon sonia sonya sophia sophie stacey stacy stella sue sylvia tabitha tamara tammy
    tanya tara ted teri terri thelma tiffany tina todd toni tonya tracey traci tracy travis trevor
    troy tyler tyrone vanessa velma vera vernon veronica vicki victor viola violet vivian wade wallace
    wanda warren wayne wendell wendy wesley whitney wilbur willard willie wilma winifred yolanda
    yvette yvonne zoe
    """.split()
)

HONORIFICS: frozenset[str] = frozenset(
    "mr mrs ms miss mx dr prof professor rev reverend fr father sister hon honorable honourable sen senator "
    "rep representative gov governor amb ambassador gen general col colonel capt captain maj major lt sgt "
    "judge justice rabbi imam pastor sir dame lord lady esq esquire mssrs messrs".split()
)
# A single letter is never a suffix (``SMITH, JOHN V`` has the middle initial V).
SUFFIXES: frozenset[str] = frozenset(
    "jr junior sr senior ii iii iv 2nd 3rd 4th md phd dds dvm cpa jd esq esquire rn pe ret usn usa usaf usmc".split()
)
PARTICLES: frozenset[str] = frozenset(
    "de del della der di da das dos du la le van von den ter ten st saint mac mc bin ibn al el ben".split()
)

# Words removed from the end (and "the" from the start) of organisation names before comparing.
ORG_SUFFIXES: frozenset[str] = frozenset(
    "inc incorporated corp corporation co company cos llc llp lp ltd limited plc sa ag nv bv gmbh pc pllc "
    "holdings holding group usa us na international intl global worldwide americas the".split()
)
# Tokens that say nothing about which organisation it is: not used to block organisation names.
ORG_STOPWORDS: frozenset[str] = frozenset(
    "and of the for in at on a an inc corp co llc llp lp ltd company corporation group holdings services "
    "service association associates american national international united us usa new first".split()
)
# Employer/occupation values that are not an employer: never evidence for or against a match.
GENERIC_EMPLOYERS: frozenset[str] = frozenset(
    {
        "",
        "none",
        "n a",
        "na",
        "not employed",
        "unemployed",
        "retired",
        "self",
        "self employed",
        "selfemployed",
        "homemaker",
        "student",
        "information requested",
        "information requested per best efforts",
        "info requested",
        "requested",
        "unknown",
        "refused",
        "disabled",
    }
)
# Values that count as missing for the required-fields rule.
MISSING_VALUES: frozenset[str] = frozenset(
    {"", "n a", "na", "none given", "unknown", "information requested", "info requested", "requested",
     "information requested per best efforts", "best efforts", "refused", "not provided"}
)  # fmt: skip

US_STATES: frozenset[str] = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP AA AE AP".split()
)
US_COUNTRY_NAMES: frozenset[str] = frozenset({"", "us", "usa", "united states", "united states of america", "u s a"})

_NEIGHBOURS = """
AL FL GA MS TN; AK; AZ CA CO NM NV UT; AR LA MO MS OK TN TX; CA AZ NV OR; CO AZ KS NE NM OK UT WY;
CT MA NY RI; DE MD NJ PA; DC MD VA; FL AL GA; GA AL FL NC SC TN; HI; ID MT NV OR UT WA WY;
IL IA IN KY MO WI; IN IL KY MI OH; IA IL MN MO NE SD WI; KS CO MO NE OK; KY IL IN MO OH TN VA WV;
LA AR MS TX; ME NH; MD DC DE PA VA WV; MA CT NH NY RI VT; MI IN OH WI; MN IA ND SD WI;
MS AL AR LA TN; MO AR IA IL KS KY NE OK TN; MT ID ND SD WY; NE CO IA KS MO SD WY; NV AZ CA ID OR UT;
NH MA ME VT; NJ DE NY PA; NM AZ CO OK TX UT; NY CT MA NJ PA VT; NC GA SC TN VA; ND MN MT SD;
OH IN KY MI PA WV; OK AR CO KS MO NM TX; OR CA ID NV WA; PA DE MD NJ NY OH WV; RI CT MA;
SC GA NC; SD IA MN MT ND NE WY; TN AL AR GA KY MO MS NC VA; TX AR LA NM OK; UT AZ CO ID NM NV WY;
VT MA NH NY; VA DC KY MD NC TN WV; WA ID OR; WV KY MD OH PA VA; WI IA IL MI MN; WY CO ID MT NE SD UT
"""


def _neighbours() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for group in _NEIGHBOURS.split(";"):
        codes = group.split()
        if not codes:
            continue
        head, rest = codes[0], codes[1:]
        out.setdefault(head, set()).update(rest)
        for r in rest:
            out.setdefault(r, set()).add(head)
    return {k: frozenset(v) for k, v in out.items()}


STATE_NEIGHBOURS: dict[str, frozenset[str]] = _neighbours()


def _invert() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for canonical, nicks in NICKNAMES.items():
        out.setdefault(canonical, set()).add(canonical)
        for n in nicks:
            out.setdefault(n, set()).add(canonical)
    return {k: frozenset(v) for k, v in out.items()}


NICKNAME_TO_CANONICAL: dict[str, frozenset[str]] = _invert()
KNOWN_GIVEN_NAMES: frozenset[str] = GIVEN_NAMES | frozenset(NICKNAME_TO_CANONICAL)

__all__ = [
    "GENERIC_EMPLOYERS",
    "GIVEN_NAMES",
    "HONORIFICS",
    "KNOWN_GIVEN_NAMES",
    "MISSING_VALUES",
    "NICKNAMES",
    "NICKNAME_TO_CANONICAL",
    "ORG_STOPWORDS",
    "ORG_SUFFIXES",
    "PARTICLES",
    "STATE_NEIGHBOURS",
    "SUFFIXES",
    "US_COUNTRY_NAMES",
    "US_STATES",
]
