//! Word lists for the demo dataset: genres, studios, talent names, title and description
//! vocabulary, and the phrases social posts are built from. All names are invented.

pub const GENRES: [&str; 12] = [
    "Drama",
    "Comedy",
    "Action",
    "Thriller",
    "Sci-Fi",
    "Fantasy",
    "Documentary",
    "Romance",
    "Horror",
    "Animation",
    "Crime",
    "Family",
];

/// Loading of each genre (same order as [`GENRES`]) on the 4 latent taste factors:
/// adrenaline, heart, light-hearted, cerebral.
pub const GENRE_FACTORS: [[f64; 4]; 12] = [
    [0.0, 1.0, 0.0, 0.3], // Drama
    [0.0, 0.1, 1.0, 0.0], // Comedy
    [1.0, 0.0, 0.2, 0.0], // Action
    [0.8, 0.0, 0.0, 0.5], // Thriller
    [0.5, 0.0, 0.0, 1.0], // Sci-Fi
    [0.4, 0.3, 0.3, 0.6], // Fantasy
    [0.0, 0.2, 0.0, 1.0], // Documentary
    [0.0, 1.0, 0.4, 0.0], // Romance
    [1.0, 0.0, 0.0, 0.2], // Horror
    [0.1, 0.2, 1.0, 0.0], // Animation
    [0.6, 0.2, 0.0, 0.7], // Crime
    [0.0, 0.4, 1.0, 0.0], // Family
];

/// Relative frequency of each genre as a title's primary genre.
pub const GENRE_WEIGHTS: [f64; 12] = [1.6, 1.4, 1.2, 1.1, 0.8, 0.6, 0.6, 0.8, 0.6, 0.6, 0.9, 0.5];

pub const BRANDS: [&str; 8] = [
    "Lumen Pictures",
    "Northwind Studios",
    "Red Kite Films",
    "Bluebell Animation",
    "Ironclad Entertainment",
    "Silver Lake Media",
    "Harbor Light",
    "Quarry Road Productions",
];

pub const FIRST_NAMES: [&str; 40] = [
    "Ava", "Marcus", "Lena", "Tobias", "Priya", "Jonah", "Zoë", "Elias", "Maya", "Rafael", "Ingrid", "Dev", "Camille",
    "Theo", "Aiko", "Samuel", "Noor", "Felix", "Greta", "Omar", "Hana", "Luca", "Iris", "Kwame", "Sofia", "Declan",
    "Mina", "Anders", "Leila", "Cole", "Yara", "Bastien", "Ruth", "Kenji", "Esme", "Malik", "Freya", "Jules", "Nadia",
    "Oscar",
];

pub const LAST_NAMES: [&str; 40] = [
    "Calloway",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Ramanathan",
    "Whitlock",
    "Brandt",
    "O'Hara",
    "Castellanos",
    "Vance",
    "Nakamura",
    "Adeyemi",
    "Hartley",
    "Sørensen",
    "Delgado",
    "Fairbanks",
    "Kowalski",
    "Mbeki",
    "Ashford",
    "Petrov",
    "Quinlan",
    "Haddad",
    "Thornbury",
    "Ferreira",
    "Lindgren",
    "Achebe",
    "Montague",
    "Ishikawa",
    "Blackwood",
    "Rossi",
    "Kaur",
    "Eriksen",
    "Devereux",
    "Mendel",
    "Obi",
    "Sinclair",
    "Takeda",
    "Varga",
    "Wilder",
    "Yilmaz",
];

pub const TITLE_ADJ: [&str; 32] = [
    "Silent", "Broken", "Golden", "Hidden", "Last", "Crimson", "Endless", "Frozen", "Wild", "Midnight", "Burning",
    "Distant", "Hollow", "Electric", "Paper", "Velvet", "Iron", "Lonely", "Secret", "Little", "Savage", "Gentle",
    "Restless", "Fading", "Bright", "Northern", "Glass", "Quiet", "Lucky", "Stolen", "Painted", "Infinite",
];

pub const TITLE_NOUN: [&str; 40] = [
    "Harbor",
    "Kingdom",
    "Signal",
    "Garden",
    "Protocol",
    "Horizon",
    "Orchard",
    "Empire",
    "River",
    "Code",
    "Summer",
    "Witness",
    "Frontier",
    "Lantern",
    "Voyage",
    "Circuit",
    "Heist",
    "Crown",
    "Echo",
    "Island",
    "Storm",
    "Letter",
    "Machine",
    "Forest",
    "Station",
    "Tide",
    "Mirror",
    "Compass",
    "Outpost",
    "Carnival",
    "Labyrinth",
    "Dynasty",
    "Anthem",
    "Shelter",
    "Pilot",
    "Memory",
    "Rebellion",
    "Bakery",
    "Dragon",
    "Planet",
];

/// Per genre (same order as [`GENRES`]): nouns, adjectives and plot verbs for descriptions.
pub struct GenreVocab {
    pub nouns: &'static [&'static str],
    pub adjectives: &'static [&'static str],
    pub plots: &'static [&'static str],
    pub settings: &'static [&'static str],
}

pub const GENRE_VOCAB: [GenreVocab; 12] = [
    GenreVocab {
        nouns: &["family", "widow", "teacher", "brothers", "inheritance", "secret", "marriage"],
        adjectives: &["intimate", "searing", "quiet", "heartfelt", "unflinching"],
        plots: &["confronts a painful past", "rebuilds a fractured family", "faces an impossible choice"],
        settings: &["a small mining town", "post-war Lisbon", "a crowded hospital"],
    },
    GenreVocab {
        nouns: &["roommates", "wedding", "slacker", "misfits", "road trip", "office", "prank"],
        adjectives: &["hilarious", "madcap", "witty", "irreverent", "feel-good"],
        plots: &["stumbles into one disaster after another", "plans the worst party ever", "fakes a career"],
        settings: &["a chaotic sitcom office", "a seaside caravan park", "suburban New Jersey"],
    },
    GenreVocab {
        nouns: &["mercenary", "convoy", "showdown", "explosions", "fugitive", "commando", "chase"],
        adjectives: &["explosive", "relentless", "adrenaline-fuelled", "high-octane", "brutal"],
        plots: &["fights back against a private army", "races against the clock", "leads a daring rescue"],
        settings: &["the streets of Marseille", "a hijacked freight train", "a desert border town"],
    },
    GenreVocab {
        nouns: &["detective", "conspiracy", "stalker", "hostage", "informant", "cover-up", "witness"],
        adjectives: &["tense", "twisty", "paranoid", "nail-biting", "suspenseful"],
        plots: &["uncovers a deadly conspiracy", "is hunted by an unseen enemy", "must clear their name"],
        settings: &["a rain-soaked city", "a remote research station", "a luxury cruise liner"],
    },
    GenreVocab {
        nouns: &["astronaut", "android", "colony", "wormhole", "starship", "simulation", "clone"],
        adjectives: &["mind-bending", "visionary", "dystopian", "cerebral", "futuristic"],
        plots: &["discovers the colony is a simulation", "makes first contact", "travels beyond the wormhole"],
        settings: &["a dying space station", "a flooded future London", "the rings of Saturn"],
    },
    GenreVocab {
        nouns: &["sorcerer", "dragon", "quest", "prophecy", "kingdom", "curse", "warrior"],
        adjectives: &["epic", "enchanting", "mythic", "sweeping", "magical"],
        plots: &["sets out on a perilous quest", "breaks an ancient curse", "fulfils a forgotten prophecy"],
        settings: &["an enchanted forest", "a kingdom on the brink of war", "the floating isles"],
    },
    GenreVocab {
        nouns: &["investigation", "archive", "footage", "scientists", "wildlife", "history", "interviews"],
        adjectives: &["eye-opening", "revealing", "thought-provoking", "meticulous", "award-winning"],
        plots: &[
            "examines the rise and fall of an empire",
            "follows scientists in the field",
            "reveals untold stories",
        ],
        settings: &["the Arctic circle", "the deep ocean", "the archives of a vanished newspaper"],
    },
    GenreVocab {
        nouns: &["lovers", "romance", "letters", "first love", "soulmates", "wedding", "summer fling"],
        adjectives: &["tender", "swoon-worthy", "bittersweet", "charming", "romantic"],
        plots: &["falls for a stranger", "rekindles a lost love", "writes letters to an unknown admirer"],
        settings: &["a Parisian bookshop", "a Tuscan vineyard", "a snowed-in ski lodge"],
    },
    GenreVocab {
        nouns: &["haunting", "demon", "cabin", "ritual", "creature", "possession", "cult"],
        adjectives: &["terrifying", "blood-curdling", "eerie", "gruesome", "unsettling"],
        plots: &["awakens something in the woods", "is stalked by a creature", "joins a sinister cult"],
        settings: &["an abandoned asylum", "a cabin in the woods", "a fog-bound fishing village"],
    },
    GenreVocab {
        nouns: &["robot", "puppy", "adventure", "friendship", "critters", "balloon", "toymaker"],
        adjectives: &["colourful", "whimsical", "playful", "heartwarming", "animated"],
        plots: &["goes on a big adventure", "learns the meaning of friendship", "saves the village festival"],
        settings: &["a candy-coloured kingdom", "a bustling toy shop", "an underwater city"],
    },
    GenreVocab {
        nouns: &["gangster", "heist", "cartel", "robbery", "syndicate", "smuggler", "mob"],
        adjectives: &["gritty", "violent", "stylish", "hard-boiled", "morally murky"],
        plots: &["plans one last heist", "infiltrates a crime syndicate", "rises through the mob"],
        settings: &["1970s Naples", "the docks of Glasgow", "a casino in Macau"],
    },
    GenreVocab {
        nouns: &["siblings", "holiday", "grandparents", "pets", "treasure", "camp", "puppies"],
        adjectives: &["wholesome", "cosy", "uplifting", "funny", "sweet"],
        plots: &["saves the family farm", "spends a summer at grandma's", "hunts for buried treasure"],
        settings: &["a sleepy seaside town", "a summer camp", "a snowy mountain village"],
    },
];

/// Positive clauses; some contain negations ("never boring") so that bigrams carry signal
/// unigrams cannot.
pub const POSITIVE: [&str; 18] = [
    "loved it",
    "absolutely brilliant",
    "great acting",
    "so good",
    "amazing soundtrack",
    "beautifully shot",
    "a masterpiece",
    "gripping story",
    "highly recommend",
    "fantastic cast",
    "kept me hooked",
    "best thing I've watched this year",
    "stunning visuals",
    "the ending was perfect",
    "what a ride",
    "instant classic",
    "cried and laughed",
    "worth every minute",
];

pub const POSITIVE_NEGATED: [&str; 8] = [
    "never boring",
    "not bad at all",
    "not disappointed",
    "never a dull moment",
    "not a waste of time",
    "can't stop watching",
    "no complaints",
    "didn't expect to love it",
];

pub const NEGATIVE: [&str; 18] = [
    "boring",
    "a total mess",
    "terrible writing",
    "waste of time",
    "so disappointing",
    "awful pacing",
    "badly acted",
    "fell flat",
    "painfully slow",
    "the ending ruined it",
    "cringe dialogue",
    "lazy plot",
    "turned it off halfway",
    "overrated",
    "what a letdown",
    "worst episode yet",
    "dull and predictable",
    "a cheap cash grab",
];

pub const NEGATIVE_NEGATED: [&str; 8] = [
    "not great",
    "not good at all",
    "never funny",
    "not worth it",
    "not impressed",
    "didn't love it",
    "not even close to the hype",
    "never again",
];

/// Polarity-free filler.
pub const FILLER: [&str; 16] = [
    "watched it last night",
    "with friends",
    "on the couch",
    "thoughts?",
    "anyone else watching?",
    "just finished episode 3",
    "the trailer dropped",
    "finally got around to it",
    "weekend plans sorted",
    "on my commute",
    "second time watching",
    "my partner picked it",
    "saw the premiere",
    "the whole season",
    "at 2am",
    "between meetings",
];

pub const OPENERS: [&str; 8] =
    ["Just watched", "Finally saw", "Binged", "Rewatched", "Started", "Caught", "Thoughts on", "Currently watching"];

pub const TALENT_POSITIVE: [&str; 6] =
    ["was incredible", "steals every scene", "deserves an award", "was perfect", "nailed it", "is a legend"];

pub const TALENT_NEGATIVE: [&str; 6] =
    ["was miscast", "phoned it in", "was wooden", "felt off", "was annoying", "couldn't save it"];
