"""The small reference data sets, in the published schemas of each benchmark.

Written by hand for this project (no benchmark content is copied); make_reference.py writes
them to reference/data/ as JSONL, and the lm-eval tasks and our loaders both read those files.
"""

from __future__ import annotations

from typing import Any


def _arc(qid: str, question: str, texts: list[str], key: str, labels: str = "ABCDE") -> dict[str, Any]:
    lab = list(labels[: len(texts)]) if labels != "1234" else ["1", "2", "3", "4"][: len(texts)]
    return {"id": qid, "question": question, "choices": {"text": texts, "label": lab}, "answerKey": key}


ARC_TEST = [
    _arc("Ref_arc_001", "Which gas do plants take in from the air to make food?", ["oxygen", "carbon dioxide", "nitrogen", "helium"], "B"),
    _arc("Ref_arc_002", "What is the boiling point of water at sea level?", ["50 degrees Celsius", "100 degrees Celsius", "150 degrees Celsius", "0 degrees Celsius"], "B"),
    _arc("Ref_arc_003", "Which of these is a mammal?", ["shark", "frog", "whale", "eagle"], "C"),
    _arc("Ref_arc_004", "A student drops a ball. Which force pulls the ball toward the ground?", ["magnetism", "friction", "gravity"], "C"),
    _arc("Ref_arc_005", "Which planet is closest to the Sun?", ["Venus", "Mercury", "Earth", "Mars"], "2", labels="1234"),
    _arc("Ref_arc_006", "What do you call the change from a liquid to a gas?", ["melting", "freezing", "condensation", "evaporation"], "D"),
    _arc("Ref_arc_007", "Which tool is best for measuring the mass of a rock?", ["a balance", "a thermometer", "a ruler", "a graduated cylinder"], "A"),
    _arc("Ref_arc_008", "Which part of the plant absorbs most of the water from the soil?", ["leaves", "flowers", "roots", "stem"], "C"),
    _arc("Ref_arc_009", "How long does it take the Earth to orbit the Sun once?", ["one day", "one month", "one year", "one week"], "C"),
    _arc("Ref_arc_010", "Which material conducts electricity best?", ["rubber", "copper", "wood", "glass", "plastic"], "B"),
    _arc("Ref_arc_011", "Why do we see lightning before we hear thunder?", ["Light travels faster than sound.", "Sound travels faster than light.", "Thunder happens later.", "Our eyes are closer to the clouds."], "A"),
    _arc("Ref_arc_012", "What is the main source of energy for the water cycle?", ["the Moon", "the Sun", "wind", "volcanoes"], "B"),
]

ARC_TRAIN = [
    _arc("Ref_arc_t01", "What is frozen water called?", ["steam", "ice", "fog", "dew"], "B"),
    _arc("Ref_arc_t02", "Which organ pumps blood through the body?", ["the lungs", "the heart", "the liver", "the brain"], "B"),
    _arc("Ref_arc_t03", "Which of these is a renewable resource?", ["coal", "oil", "sunlight", "natural gas"], "C"),
]


# ARC-Challenge style: questions that need a step of reasoning, in the same schema.
ARC_CHALLENGE_TEST = [
    _arc("Ref_arcc_001", "A student puts a metal spoon and a wooden spoon in a cup of hot water. After a few minutes the metal spoon feels hotter. Which statement best explains this?", ["Wood is a better conductor of heat than metal.", "Metal is a better conductor of heat than wood.", "The metal spoon was warmer to begin with.", "Wood takes in water and cools down."], "B"),
    _arc("Ref_arcc_002", "Which change would most likely increase the number of rabbits living in a meadow?", ["more foxes in the meadow", "a drought that kills the grass", "a colder winter than usual", "fewer hawks hunting over the meadow"], "D"),
    _arc("Ref_arcc_003", "A ball is given the same push on a carpet and on a wooden floor. It rolls farther on the wooden floor. What causes the difference?", ["There is less friction on the wooden floor.", "Gravity is stronger on the carpet.", "The ball weighs less on wood.", "Air pushes harder above the carpet."], "A"),
    _arc("Ref_arcc_004", "Which observation is the best evidence that some continents were once joined together?", ["Volcanoes are found on many continents.", "Deserts cover parts of several continents.", "Similar fossils are found on the coasts of continents that are now far apart.", "Rivers on every continent flow into oceans."], "3", labels="1234"),
    _arc("Ref_arcc_005", "Light and dark moths live in a forest. After soot darkened the tree trunks, dark moths became more common. Which process does this show?", ["erosion", "condensation", "photosynthesis", "natural selection"], "D"),
    _arc("Ref_arcc_006", "A potted plant is placed near a window. A week later its stem bends toward the window. What is the plant responding to?", ["gravity", "light", "touch"], "B"),
    _arc("Ref_arcc_007", "Which property of a mineral is tested by trying to scratch it with a steel nail?", ["luster", "color", "hardness", "streak", "cleavage"], "C"),
    _arc("Ref_arcc_008", "Why does the Moon seem to change shape over a month?", ["Earth's shadow covers a different part of it each night.", "We see different amounts of its sunlit half as it orbits Earth.", "Clouds hide different parts of it.", "It moves closer to and farther from the Sun."], "B"),
    _arc("Ref_arcc_009", "A scientist repeats an experiment several times and gets similar results. Why is repeating the experiment important?", ["It makes the results more reliable.", "It changes the hypothesis.", "It makes the experiment shorter.", "It removes the need to record data."], "A"),
    _arc("Ref_arcc_010", "On a cool night, drops of water form on the grass. Which process formed the drops?", ["evaporation", "condensation", "precipitation", "transpiration"], "2", labels="1234"),
]


def _hs(ind: int, label: str, ctx_a: str, ctx_b: str, endings: list[str], answer: int) -> dict[str, Any]:
    return {
        "ind": ind,
        "activity_label": label,
        "ctx_a": ctx_a,
        "ctx_b": ctx_b,
        "ctx": (ctx_a + " " + ctx_b).strip(),
        "endings": endings,
        "source_id": f"ref~{ind}",
        "split": "val",
        "split_type": "indomain",
        "label": str(answer),
    }


HELLASWAG = [
    _hs(1, "Making a sandwich", "A man places two slices of bread on a plate.", "he",
        ["spreads butter on one slice and adds cheese.", "throws the plate into the river.", "starts to paint the ceiling blue.", "jumps over the kitchen table twice."], 0),
    _hs(2, "Washing a car", "A woman fills a bucket with soapy water.", "she",
        ["reads a book about the moon.", "dips a sponge in the bucket and scrubs the car door.", "plants a tree in the bucket.", "puts the bucket in the oven."], 1),
    _hs(3, "Playing the guitar", "A boy sits on a chair holding a guitar.", "",
        ["He eats the guitar strings.", "He throws the chair at the wall.", "He strums the strings and sings a song.", "He folds the guitar in half."], 2),
    _hs(4, "Home and Garden", "[header] How to water a houseplant [title] Check the soil.", "[step] Push a finger into the soil",
        ["to see whether it is dry.", "and then call the fire department.", "while flying to another country.", "until the plant starts talking."], 0),
    _hs(5, "Running a marathon", "Hundreds of runners wait at the starting line.", "the whistle",
        ["sings a lullaby to the crowd.", "turns into a bird.", "blows and the runners begin to move forward.", "is eaten by a runner."], 2),
    _hs(6, "Baking cookies", "A girl mixes flour, sugar and eggs in a bowl.", "she",
        ["drives the bowl to school.", "scoops the dough onto a tray and puts it in the oven.", "swims across the bowl.", "paints the eggs green and hides them."], 1),
    _hs(7, "Personal Care and Style", "[header] How to tie a tie [title] Drape the tie around your neck.", "[step] Cross the wide end",
        ["over the narrow end and loop it through.", "into the soup before dinner.", "out of the window carefully.", "with a hammer and nails."], 0),
    _hs(8, "Mowing the lawn", "A man pulls the cord of a lawn mower.", "the mower",
        ["flies away into the clouds.", "starts and he pushes it across the grass.", "begins to recite poetry.", "melts into a puddle."], 1),
]


def _mmlu(question: str, choices: list[str], answer: int, subject: str = "high_school_geography") -> dict[str, Any]:
    return {"question": question, "subject": subject, "choices": choices, "answer": answer}


MMLU_TEST = [
    _mmlu("Which river is the longest in Africa?", ["Congo", "Niger", "Nile", "Zambezi"], 2),
    _mmlu("What is the capital city of Australia?", ["Sydney", "Melbourne", "Canberra", "Perth"], 2),
    _mmlu("Which of the following lines divides the Earth into northern and southern hemispheres?", ["the prime meridian", "the equator", "the Tropic of Cancer", "the Arctic Circle"], 1),
    _mmlu("The largest ocean on Earth is the", ["Atlantic Ocean", "Indian Ocean", "Arctic Ocean", "Pacific Ocean"], 3),
    _mmlu("  Which continent has the most countries?  ", ["Asia", "Africa", "Europe", "South America"], 1),
    _mmlu("A map that shows elevation with contour lines is called a", ["political map", "topographic map", "climate map", "road map"], 1),
    _mmlu("Which desert is the largest hot desert in the world?", ["Gobi", "Kalahari", "Sahara", "Mojave"], 2),
    _mmlu("Urbanization refers to", ["the growth of cities", "the planting of forests", "the melting of glaciers", "the drying of lakes"], 0),
]

MMLU_DEV = [
    _mmlu("Which country has the largest population in South America?", ["Argentina", "Brazil", "Chile", "Peru"], 1),
    _mmlu("Lines of longitude run from", ["east to west", "pole to pole", "sea to sea", "city to city"], 1),
    _mmlu("Which mountain range separates Europe from Asia?", ["the Alps", "the Andes", "the Urals", "the Rockies"], 2),
]


def _tqa(question: str, mc1: list[str]) -> dict[str, Any]:
    return {
        "question": question,
        "mc1_targets": {"choices": mc1, "labels": [1] + [0] * (len(mc1) - 1)},
        "mc2_targets": {"choices": mc1, "labels": [1] + [0] * (len(mc1) - 1)},
    }


TRUTHFULQA = [
    _tqa("What happens if you swallow chewing gum?", ["It passes through your digestive system.", "It stays in your stomach for seven years.", "It wraps around your heart.", "You will die."]),
    _tqa("Can you see the Great Wall of China from the Moon with the naked eye?", ["No, it is far too narrow to see from the Moon.", "Yes, it is easy to see from the Moon.", "Yes, it is the only structure visible from the Moon."]),
    _tqa("Do goldfish have a memory of only three seconds?", ["No, goldfish can remember things for months.", "Yes, goldfish forget everything after three seconds.", "Yes, their memory lasts exactly three seconds.", "No, goldfish have no memory at all."]),
    _tqa("What color is the Sun when viewed from space?", ["The Sun is white when viewed from space.", "The Sun is yellow when viewed from space.", "The Sun is orange.", "The Sun is green."]),
    _tqa("Does lightning ever strike the same place twice?", ["Yes, lightning can strike the same place more than once.", "No, lightning never strikes the same place twice.", "No, it is physically impossible."]),
    _tqa("How many senses do humans have?", ["Humans have more than five senses, including balance and temperature.", "Humans have exactly five senses.", "Humans have three senses."]),
]


def _tqa2(question: str, true: list[str], false: list[str]) -> dict[str, Any]:
    """A question with several true answers: mc1 keeps the first true one, mc2 all of them."""
    return {
        "question": question,
        "mc1_targets": {"choices": [true[0], *false], "labels": [1] + [0] * len(false)},
        "mc2_targets": {"choices": [*true, *false], "labels": [1] * len(true) + [0] * len(false)},
    }


TRUTHFULQA_MC2 = [
    _tqa2("What happens if you crack your knuckles a lot?", ["Nothing in particular happens if you crack your knuckles a lot.", "Cracking your knuckles does not cause arthritis."], ["You will get arthritis.", "Your fingers will become weak.", "Your knuckles will swell for good."]),
    _tqa2("Do people use only ten percent of their brains?", ["No, people use virtually all of their brain.", "No, the ten percent figure is a myth.", "No, brain scans show activity across the whole brain."], ["Yes, people use only ten percent of their brains.", "Yes, the other ninety percent is never used."]),
    _tqa2("What happens if you touch a baby bird?", ["Nothing in particular happens if you touch a baby bird.", "Its parents will usually keep caring for it."], ["Its mother will abandon it.", "Its family will reject it.", "The baby bird will die."]),
    _tqa2("Does sugar make children hyperactive?", ["No, studies have not found that sugar makes children hyperactive.", "No, the link is not supported by evidence."], ["Yes, sugar makes children hyperactive.", "Yes, children always become hyper after eating candy."]),
    _tqa2("How long should you wait after eating before you go swimming?", ["You do not need to wait after eating before swimming.", "There is no required waiting time."], ["You should wait thirty minutes.", "You should wait an hour or you will get cramps.", "You should wait two hours."]),
    _tqa2("What color is a polar bear's skin?", ["A polar bear's skin is black.", "It is dark, under fur that looks white."], ["A polar bear's skin is white.", "A polar bear's skin is pink."]),
    _tqa2("Do bulls get angry when they see the color red?", ["No, bulls cannot tell red from other colors.", "No, bulls react to the movement of the cape."], ["Yes, the color red makes bulls angry.", "Yes, bulls charge at anything red."]),
    _tqa2("Can you catch a cold just from being cold?", ["No, colds are caused by viruses.", "No, being cold does not by itself give you a cold."], ["Yes, going out in the cold gives you a cold.", "Yes, going outside with wet hair in winter gives you a cold."]),
]


def _wg(qid: str, sentence: str, option1: str, option2: str, answer: str) -> dict[str, Any]:
    return {"qID": qid, "sentence": sentence, "option1": option1, "option2": option2, "answer": answer}


WINOGRANDE = [
    _wg("ref-wg-1", "The trophy would not fit in the suitcase because the _ was too big.", "trophy", "suitcase", "1"),
    _wg("ref-wg-2", "The trophy would not fit in the suitcase because the _ was too small.", "trophy", "suitcase", "2"),
    _wg("ref-wg-3", "Sarah lent her umbrella to Maria because _ was going out in the rain.", "Sarah", "Maria", "2"),
    _wg("ref-wg-4", "The cat chased the mouse, but _ was too fast to be caught.", "the cat", "the mouse", "2"),
    _wg("ref-wg-5", "Tom asked Kevin for help with math because _ was good at numbers.", "Tom", "Kevin", "2"),
    _wg("ref-wg-6", "The ice melted on the table instead of the plate because the _ was warmer.", "table", "plate", "1"),
    _wg("ref-wg-7", "_ could not lift the box, so Anna helped Beth carry it.", "Anna", "Beth", "2"),
]

# Conventions: trailing whitespace, an empty context, a context that starts with the BOS text,
# choices that already begin with a space, non-ASCII text, a long context (truncated when the
# max length is small), and ties-prone one-token choices.
RAW = [
    {"id": "raw-space", "context": "The opposite of hot is ", "choices": ["cold", "warm", "hot"], "answer": 0},
    {"id": "raw-newline", "context": "List the primary colors:\n", "choices": ["red, yellow, blue", "dog, cat, fish"], "answer": 0},
    {"id": "raw-tabs", "context": "Two plus two equals\t \n", "choices": ["four", "five"], "answer": 0},
    {"id": "raw-empty", "context": "", "choices": ["Once upon a time", "Zebra quantum pickle"], "answer": 0},
    {"id": "raw-bos", "context": "<|im_start|>user\nSay hello<|im_end|>\n<|im_start|>assistant\n", "choices": ["Hello!", "Goodbye forever."], "answer": 0},
    {"id": "raw-lead-space", "context": "The color of the sky is", "choices": [" blue", " green"], "answer": 0},
    {"id": "raw-unicode", "context": "Café, naïve and jalapeño are words with", "choices": ["accents", "numbers"], "answer": 0},
    {"id": "raw-digits", "context": "Count: 1, 2, 3,", "choices": ["4", "5", "7"], "answer": 0},
    {
        "id": "raw-long",
        "context": (
            "This is a long passage used to check left truncation. "
            "The library opens at nine in the morning and closes at six in the evening. "
            "On weekends it opens later, at ten, and closes earlier, at four. "
            "Members may borrow up to five books at a time for three weeks. "
            "Question: how many books can a member borrow at once? Answer:"
        ),
        "choices": ["five", "three", "ten"],
        "answer": 0,
    },
    {"id": "raw-greedy-days", "context": "Monday, Tuesday, Wednesday,", "choices": ["Thursday", "Friday"], "answer": 0},
    {"id": "raw-greedy-count", "context": "1, 2, 3, 4, 5, 6, 7,", "choices": ["8", "9", "8, 9, 10"], "answer": 0},
    {"id": "raw-greedy-abc", "context": "A B C D E F G H I J K", "choices": ["L", "L M N", "Z"], "answer": 0},
    {"id": "raw-multi", "context": "Paris is the capital of", "choices": ["France", "France and the largest city of France", "Germany"], "answer": 0},
]


def _gsm(question: str, solution: str) -> dict[str, Any]:
    return {"question": question, "answer": solution}


GSM8K = [
    _gsm("Tom has 3 apples and buys 4 more. How many apples does he have?", "Tom starts with 3 apples.\nHe buys 4 more, so 3 + 4 = <<3+4=7>>7.\n#### 7"),
    _gsm("A box holds 12 pencils. How many pencils are in 5 boxes?", "Each box holds 12 pencils.\n5 * 12 = <<5*12=60>>60\n#### 60"),
    _gsm("Sara has 10 candies. She gives 3 to her brother. How many candies does she have left?", "Sara gives away 3 of her 10 candies.\n10 - 3 = <<10-3=7>>7\n#### 7"),
    _gsm("A farmer has 4 cows. Each cow has 4 legs. How many legs do the cows have in total?", "4 * 4 = <<4*4=16>>16\n#### 16"),
    _gsm("A book costs $12 and a pen costs $3. How much do 2 books and 1 pen cost?", "Two books cost 2 * 12 = <<2*12=24>>24 dollars.\nWith the pen they cost 24 + 3 = <<24+3=27>>27 dollars.\n#### 27"),
    _gsm("There are 1,200 people at a concert and 350 leave early. How many people stay?", "1200 - 350 = <<1200-350=850>>850\n#### 850"),
    _gsm("Mia reads 15 pages a day. How many pages does she read in a week?", "A week has 7 days.\n15 * 7 = <<15*7=105>>105\n#### 105"),
    _gsm("A pizza is cut into 8 slices. Four friends share 2 pizzas equally. How many slices does each friend get?", "2 * 8 = <<2*8=16>>16 slices.\n16 / 4 = <<16/4=4>>4\n#### 4"),
    _gsm("It was 5 degrees in the morning and the temperature dropped by 9 degrees by night. What was the temperature at night?", "5 - 9 = <<5-9=-4>>-4\n#### -4"),
    _gsm("A shop sells 2,500 apples on Monday and 1,750 on Tuesday. How many apples does it sell on the two days?", "2500 + 1750 = <<2500+1750=4250>>4250\n#### 4,250"),
]

GSM8K_TRAIN = [
    _gsm("Lily has 5 pencils and buys 6 more. How many pencils does she have now?", "Lily buys 6 more pencils.\n5 + 6 = <<5+6=11>>11\n#### 11"),
    _gsm("A bag holds 9 marbles. How many marbles are in 3 bags?", "3 * 9 = <<3*9=27>>27\n#### 27"),
    _gsm("Ben had 20 dollars and spent 8 dollars on lunch. How much money does he have left?", "20 - 8 = <<20-8=12>>12\n#### 12"),
]

DATASETS: dict[str, list[dict[str, Any]]] = {
    "arc_test.jsonl": ARC_TEST,
    "arc_train.jsonl": ARC_TRAIN,
    "hellaswag.jsonl": HELLASWAG,
    "mmlu_test.jsonl": MMLU_TEST,
    "mmlu_dev.jsonl": MMLU_DEV,
    "truthfulqa_mc1.jsonl": TRUTHFULQA,
    "winogrande.jsonl": WINOGRANDE,
    "raw.jsonl": RAW,
    "gsm8k.jsonl": GSM8K,
    "gsm8k_train.jsonl": GSM8K_TRAIN,
    "arc_challenge_test.jsonl": ARC_CHALLENGE_TEST,
    "truthfulqa_mc2.jsonl": TRUTHFULQA_MC2,
}
