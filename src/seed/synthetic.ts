import { type DatasetCatalog, type FieldCatalog, idCheckDigit } from '../domain';

/**
 * Synthetic records for the embedded source database, shaped like the real ones so that extraction,
 * transforms and deliveries meet realistic values (check digits, romanisation styles, offsets) without
 * any real person's data.
 *
 * Every row is a pure function of (seed, rows, dataset, row index, Taipei day of `now`): each row and
 * each person reseeds its own PRNG, so the order rows are generated in never matters. The Taipei day
 * is the anchor for "recent" dates, so that statuses such as expired/valid agree with expiry dates.
 *
 * People are drawn from three populations (citizens, visitors, residents). Travellers appear several
 * times in entry_exit, and resident k of entry_exit is the person of residence row k + 1, so the two
 * datasets can be linked the way real ones can.
 */

// ---------------------------------------------------------------------------------------------
// PRNG

/** sfc32: small, fast, passes PractRand; 128-bit state, so reseeding per row is cheap. */
export class Sfc32 {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 1;

  constructor(a = 0, b = 0, c = 0) {
    this.reset(a, b, c);
  }

  reset(a: number, b: number, c: number): this {
    this.a = a | 0;
    this.b = b | 0;
    this.c = c | 0;
    this.d = 1;
    // Related seeds (row i, row i + 1) must not give related streams.
    for (let i = 0; i < 12; i++) this.u32();
    return this;
  }

  u32(): number {
    let t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    const c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    t = (t + this.d) | 0;
    this.c = (c + t) | 0;
    return t >>> 0;
  }

  /** 0 ≤ n < bound. */
  below(bound: number): number {
    return Math.floor((this.u32() / 4294967296) * bound);
  }

  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }
}

/** A 32-bit finaliser (lowbias32): turns counters into unrelated seed words. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** Weighted choice in O(1): a 4096-slot table indexed by the top 12 bits of one draw. */
class Weighted<T> {
  private readonly slots = new Uint16Array(4096);
  readonly items: T[];

  constructor(entries: ReadonlyArray<readonly [T, number]>) {
    this.items = entries.map((e) => e[0]);
    const total = entries.reduce((s, e) => s + e[1], 0);
    if (!(total > 0) || entries.length > 4096) throw new Error('weighted table needs positive weights');
    // Every listed item keeps at least one slot, so rare values still occur.
    const counts = entries.map((e) => Math.max(1, Math.floor((e[1] / total) * 4096)));
    let diff = 4096 - counts.reduce((s, n) => s + n, 0);
    while (diff !== 0) {
      const i = counts.indexOf(Math.max(...counts));
      const step = diff > 0 ? 1 : -1;
      counts[i] += step;
      diff -= step;
    }
    let at = 0;
    counts.forEach((n, i) => this.slots.fill(i, at, (at += n)));
  }

  pick(r: Sfc32): T {
    return this.items[this.slots[r.u32() >>> 20]];
  }
}

const uniform = <T>(items: readonly T[]) => new Weighted(items.map((t) => [t, 1] as const));
const bars = (s: string) => s.split('|');

// ---------------------------------------------------------------------------------------------
// Places and codes

interface City {
  zh: string;
  /** First letter of national IDs and UI numbers issued for the city (內政部 code table). */
  letter: string;
  districts: string[];
}

const CITIES = new Weighted<City>(
  (
    [
      ['臺北市', 'A', 2.5, '中正區|大同區|中山區|松山區|大安區|萬華區|信義區|士林區|北投區|內湖區|南港區|文山區'],
      ['新北市', 'F', 4.0, '板橋區|三重區|中和區|永和區|新莊區|新店區|土城區|蘆洲區|樹林區|汐止區|鶯歌區|三峽區|淡水區|林口區|泰山區|五股區'],
      ['桃園市', 'H', 2.3, '桃園區|中壢區|平鎮區|八德區|楊梅區|蘆竹區|龜山區|大園區|觀音區|龍潭區|大溪區'],
      ['臺中市', 'B', 2.8, '中區|東區|西區|南區|北區|西屯區|南屯區|北屯區|豐原區|大里區|太平區|沙鹿區|清水區|大甲區|烏日區'],
      ['臺南市', 'D', 1.85, '中西區|東區|南區|北區|安平區|安南區|永康區|歸仁區|新營區|仁德區|善化區'],
      ['高雄市', 'E', 2.7, '新興區|前金區|苓雅區|鹽埕區|鼓山區|前鎮區|三民區|左營區|楠梓區|小港區|鳳山區|岡山區|大寮區|仁武區'],
      ['基隆市', 'C', 0.36, '仁愛區|信義區|中正區|中山區|安樂區|暖暖區|七堵區'],
      ['新竹市', 'O', 0.45, '東區|北區|香山區'],
      ['新竹縣', 'J', 0.58, '竹北市|竹東鎮|湖口鄉|新豐鄉|新埔鎮'],
      ['苗栗縣', 'K', 0.54, '苗栗市|頭份市|竹南鎮|苑裡鎮'],
      ['彰化縣', 'N', 1.24, '彰化市|員林市|和美鎮|鹿港鎮|溪湖鎮|北斗鎮'],
      ['南投縣', 'M', 0.48, '南投市|埔里鎮|草屯鎮|竹山鎮'],
      ['雲林縣', 'P', 0.66, '斗六市|虎尾鎮|斗南鎮|西螺鎮'],
      ['嘉義市', 'I', 0.26, '東區|西區'],
      ['嘉義縣', 'Q', 0.49, '太保市|朴子市|民雄鄉|水上鄉'],
      ['屏東縣', 'T', 0.8, '屏東市|潮州鎮|東港鎮|恆春鎮'],
      ['宜蘭縣', 'G', 0.45, '宜蘭市|羅東鎮|蘇澳鎮|頭城鎮'],
      ['花蓮縣', 'U', 0.32, '花蓮市|吉安鄉|壽豐鄉|玉里鎮'],
      ['臺東縣', 'V', 0.21, '臺東市|成功鎮|關山鎮'],
      ['澎湖縣', 'X', 0.1, '馬公市|湖西鄉'],
      ['金門縣', 'W', 0.14, '金城鎮|金湖鎮|金沙鎮'],
      ['連江縣', 'Z', 0.014, '南竿鄉|北竿鄉'],
    ] as const
  ).map(([zh, letter, w, d]) => [{ zh, letter, districts: bars(d) }, w] as const),
);

function taiwanId(letter: string, second: number, r: Sfc32): string {
  const body = second * 10_000_000 + r.below(10_000_000);
  return letter + String(body * 10 + idCheckDigit(letter, body));
}

export interface Port {
  code: string;
  kind: 'air' | 'sea';
  zh: string;
}

/** Airports by IATA code; seaports by UN/LOCODE, which keeps Kaohsiung harbour apart from KHH airport. */
const PORT_TABLE: ReadonlyArray<readonly [Port, number]> = [
  [{ code: 'TPE', kind: 'air', zh: '臺灣桃園國際機場' }, 70],
  [{ code: 'KHH', kind: 'air', zh: '高雄國際機場' }, 11],
  [{ code: 'TSA', kind: 'air', zh: '臺北松山機場' }, 8],
  [{ code: 'RMQ', kind: 'air', zh: '臺中國際機場' }, 4],
  [{ code: 'TNN', kind: 'air', zh: '臺南機場' }, 1],
  [{ code: 'MZG', kind: 'air', zh: '澎湖機場' }, 0.4],
  [{ code: 'KNH', kind: 'air', zh: '金門機場' }, 0.4],
  [{ code: 'HUN', kind: 'air', zh: '花蓮機場' }, 0.3],
  [{ code: 'TWKEL', kind: 'sea', zh: '基隆港' }, 1.2],
  [{ code: 'TWKNH', kind: 'sea', zh: '金門水頭港' }, 2],
  [{ code: 'TWKHH', kind: 'sea', zh: '高雄港' }, 0.6],
  [{ code: 'TWTXG', kind: 'sea', zh: '臺中港' }, 0.4],
  [{ code: 'TWHUN', kind: 'sea', zh: '花蓮港' }, 0.2],
  [{ code: 'TWMZG', kind: 'sea', zh: '澎湖馬公港' }, 0.1],
];
export const PORTS: readonly Port[] = PORT_TABLE.map((p) => p[0]);
const PORT_PICK = new Weighted(PORT_TABLE);
const KINMEN_FERRY = PORTS.findIndex((p) => p.code === 'TWKNH');

const CARRIERS_BY_PORT: Record<string, string> = {
  TPE: 'CI CI CI BR BR BR JX JX IT CX JL NH MM KE OZ 7C TW VN VJ PR 5J SQ TR TG UA DL AK D7 CA MU CZ HX NX',
  KHH: 'CI CI BR BR IT CX VN VJ PR JL MM KE 7C TW UO',
  TSA: 'CI BR JL NH KE OZ MU CA FM',
  RMQ: 'AE B7 IT CI VN',
  TNN: 'CI IT',
  MZG: 'AE B7',
  KNH: 'AE B7',
  HUN: 'AE CI',
};
const VESSELS_BY_PORT: Record<string, string[]> = {
  TWKEL: ['GDRM', 'RSPR', 'TMST', 'MSCB'],
  TWKNH: ['XMFR', 'WYUN', 'TGHS', 'JMXS'],
  TWKHH: ['GDRM', 'TYSX'],
  TWTXG: ['HXLN', 'CSTR'],
  TWHUN: ['TMST'],
  TWMZG: ['TSUN'],
};
const pad = (n: number, width: number) => String(n).padStart(width, '0');
/** "CI 0101" strings per port, built once so a row costs no string building. */
const FLIGHTS_BY_PORT = new Map<string, string[][]>(
  Object.entries(CARRIERS_BY_PORT).map(([port, carriers]) => [
    port,
    carriers.split(' ').map((c) => Array.from({ length: 999 }, (_, n) => `${c} ${pad(n + 1, 4)}`)),
  ]),
);

export const VISA_TYPES = ['visa-exempt', 'visitor', 'e-visa', 'landing', 'travel-authorization', 'entry-permit', 'resident'] as const;
export const TRAVEL_DOC_TYPES = ['passport', 'entry-exit-permit', 'mainland-travel-permit', 'travel-document'] as const;
export const PERMIT_TYPES = ['migrant-work', 'professional', 'gold-card', 'family', 'study', 'investment', 'missionary', 'permanent'] as const;
export const RESIDENCE_STATUSES = ['valid', 'expired', 'revoked'] as const;
export const DIRECTIONS = ['entry', 'exit'] as const;
export const SEXES = ['M', 'F', 'X'] as const;
type PermitType = (typeof PERMIT_TYPES)[number];

// ---------------------------------------------------------------------------------------------
// Names

const enum Culture {
  Taiwan,
  Mainland,
  HongKong,
  SeaChinese,
  Malaysia,
  Vietnam,
  Japan,
  Korea,
  Indonesia,
  Philippines,
  Thailand,
  India,
  English,
  German,
  French,
}

interface HanSurname {
  zh: string;
  wg: string;
  py: string;
  yue: string;
  hok: string;
}
/** Taiwan's most common surnames, weighted by share; Wade-Giles, pinyin, Cantonese, Hokkien spellings. */
const HAN_SURNAMES = new Weighted<HanSurname>(
  `陳 CHEN CHEN CHAN TAN 11.1|林 LIN LIN LAM LIM 8.3|黃 HUANG HUANG WONG NG 6|張 CHANG ZHANG CHEUNG TEO 5.3|李 LI LI LEE LEE 5.1|王 WANG WANG WONG ONG 4.1|吳 WU WU NG GOH 4|劉 LIU LIU LAU LAU 3.2|蔡 TSAI CAI CHOI CHUA 2.9|楊 YANG YANG YEUNG YEO 2.6|許 HSU XU HUI KHOO 2.3|鄭 CHENG ZHENG CHENG TAY 1.9|謝 HSIEH XIE TSE CHIA 1.8|郭 KUO GUO KWOK KOH 1.7|洪 HUNG HONG HUNG ANG 1.6|曾 TSENG ZENG TSANG CHAN 1.5|邱 CHIU QIU YAU KHOO 1.5|廖 LIAO LIAO LIU LIAO 1.3|賴 LAI LAI LAI LUA 1.3|周 CHOU ZHOU CHOW CHEW 1.2|徐 HSU XU TSUI CHEE 1.1|蘇 SU SU SO SOH 1.1|葉 YEH YE YIP YAP 1|莊 CHUANG ZHUANG CHONG CHNG 0.9|呂 LU LYU LUI LU 0.9|江 CHIANG JIANG KONG KANG 0.8|何 HO HE HO HO 0.7|蕭 HSIAO XIAO SIU SEOW 0.7|羅 LO LUO LAW LOH 0.7|高 KAO GAO KO KOH 0.7`
    .split('|')
    .map((s) => {
      const [zh, wg, py, yue, hok, w] = s.split(' ');
      return [{ zh, wg, py, yue, hok }, Number(w)] as const;
    }),
);

interface HanChar {
  zh: string;
  wg: string;
  py: string;
  yue: string;
}
function hanChars(text: string): HanChar[] {
  return text.split('|').map((s) => {
    const [zh, wg, py, yue] = s.split(' ');
    return { zh, wg, py, yue };
  });
}
const HAN_NEUTRAL = hanChars('明 MING MING MING|家 CHIA JIA KA|智 CHIH ZHI CHI|欣 HSIN XIN YAN|華 HUA HUA WAH|育 YU YU YUK|庭 TING TING TING|子 TZU ZI TSZ|思 SZU SI SZE|嘉 CHIA JIA KA|安 AN AN ON|心 HSIN XIN SUM');
const HAN_MALE = uniform([
  ...HAN_NEUTRAL,
  ...hanChars(
    '文 WEN WEN MAN|雄 HSIUNG XIONG HUNG|志 CHIH ZHI CHI|俊 CHUN JUN CHUN|傑 CHIEH JIE KIT|建 CHIEN JIAN KIN|宏 HUNG HONG WANG|豪 HAO HAO HO|承 CHENG CHENG SHING|翰 HAN HAN HON|冠 KUAN GUAN KOON|宇 YU YU YU|柏 PO BO PAK|彥 YEN YAN YIN|信 HSIN XIN SHUN|國 KUO GUO KWOK|偉 WEI WEI WAI|正 CHENG ZHENG CHING|哲 CHE ZHE CHIT|賢 HSIEN XIAN YIN|德 TE DE TAK|榮 JUNG RONG WING|大 TA DA TAI',
  ),
]);
const HAN_FEMALE = uniform([
  ...HAN_NEUTRAL,
  ...hanChars(
    '淑 SHU SHU SHUK|美 MEI MEI MEI|惠 HUI HUI WAI|玲 LING LING LING|芬 FEN FEN FAN|婷 TING TING TING|怡 YI YI YI|雅 YA YA NGA|筱 HSIAO XIAO SIU|佩 PEI PEI PUI|詩 SHIH SHI SZE|涵 HAN HAN HAM|蓉 JUNG RONG YUNG|瑜 YU YU YU|慧 HUI HUI WAI|秀 HSIU XIU SAU|麗 LI LI LAI|芳 FANG FANG FONG|萱 HSUAN XUAN HUEN|琪 CHI QI KEI|靜 CHING JING CHING',
  ),
]);

/** Names written in Han characters too: [romanised, Han]. */
type Glossed = readonly [string, string];
function glossed(text: string, weighted = false): Weighted<Glossed> {
  return new Weighted(
    text.split('|').map((s) => {
      const [en, zh, w] = s.split(' ');
      return [[en, zh] as const, weighted ? Number(w) : 1] as const;
    }),
  );
}
const VN_SURNAMES = glossed('NGUYEN 阮 38|TRAN 陳 11|LE 黎 9.5|PHAM 范 7|HOANG 黃 5|HUYNH 黃 3|PHAN 潘 4.5|VU 武 3.9|DANG 鄧 2|BUI 裴 2|DO 杜 1.4|HO 胡 1.3|NGO 吳 1.3|DUONG 楊 1|LY 李 0.5', true);
const VN_MALE = glossed('HUNG 雄|MINH 明|DUC 德|TUAN 俊|NAM 南|HAI 海|LONG 龍|QUANG 光|THANH 清|DUNG 勇|HIEU 孝|KHANH 慶');
const VN_FEMALE = glossed('HOA 花|LAN 蘭|HUONG 香|LINH 玲|TRANG 妝|MAI 梅|THAO 草|HANG 姮|NGA 娥|PHUONG 芳|YEN 燕|HA 河');
const JP_SURNAMES = glossed('SATO 佐藤|SUZUKI 鈴木|TAKAHASHI 高橋|TANAKA 田中|WATANABE 渡邊|ITO 伊藤|YAMAMOTO 山本|NAKAMURA 中村|KOBAYASHI 小林|KATO 加藤|YOSHIDA 吉田|YAMADA 山田|SASAKI 佐佐木|MATSUMOTO 松本|INOUE 井上');
const JP_MALE = glossed('HIROSHI 博|TAKESHI 武|KENJI 健二|DAISUKE 大輔|SHOTA 翔太|RYO 涼|KAZUKI 一輝|YUTA 雄太|TAKUYA 拓也|NAOKI 直樹');
const JP_FEMALE = glossed('YUKI 由紀|AYAKA 彩香|MISAKI 美咲|HARUKA 遙|NAOMI 直美|KEIKO 恵子|AKIKO 明子|YUMI 由美|SAKURA 櫻|MAI 麻衣');
const KR_SURNAMES = glossed('KIM 金 21|LEE 李 15|PARK 朴 8.5|CHOI 崔 4.7|JUNG 鄭 4.4|KANG 姜 2.3|CHO 趙 2.1|YOON 尹 2.1|JANG 張 2|LIM 林 1.7|HAN 韓 1.5|OH 吳 1.5|SEO 徐 1.4|SHIN 申 1.4', true);
const KR_MALE = glossed('MIN-JUN 敏俊|JI-HOON 志勳|SEUNG-HO 承浩|DONG-HYUN 東賢|SUNG-MIN 成敏|JUN-HO 俊浩|HYUN-WOO 賢宇|SANG-WOO 相佑');
const KR_FEMALE = glossed('JI-YEON 智妍|SEO-YEON 瑞妍|MIN-JI 敏智|HYE-JIN 惠珍|SU-JIN 秀珍|EUN-JI 恩智|YOUNG-MI 英美|SO-YEON 素妍');

interface LatinNames {
  surnames: Weighted<string>;
  male: Weighted<string>;
  female: Weighted<string>;
}
const latin = (s: string, m: string, f: string): LatinNames => ({ surnames: uniform(bars(s)), male: uniform(bars(m)), female: uniform(bars(f)) });
const LATIN: Partial<Record<Culture, LatinNames>> = {
  [Culture.Indonesia]: latin(
    'SANTOSO|SETIAWAN|WAHYUNI|RAHAYU|HIDAYAT|SAPUTRA|LESTARI|KURNIAWAN|PRATAMA|WIJAYA|SUSANTO|NURHAYATI',
    'BUDI|AGUS|EKO|ADI|RUDI|DWI|ARIF|HENDRA|YUSUF|IWAN',
    'SITI|SRI|DEWI|NUR|RINA|PUTRI|WATI|YANTI|LILIS|ENDANG',
  ),
  [Culture.Philippines]: latin(
    'SANTOS|REYES|CRUZ|BAUTISTA|GARCIA|MENDOZA|DELA CRUZ|RAMOS|AQUINO|CASTILLO|VILLANUEVA|FERNANDEZ|TORRES|GONZALES',
    'JOSE|JUAN|MARK|JOHN PAUL|RAFAEL|JERRY|RONALDO|MICHAEL|ARNEL',
    'MARIA|MARIA CRISTINA|JOCELYN|ANGELICA|MARICEL|ROWENA|MARILOU|JENNIFER|LIZA',
  ),
  [Culture.Thailand]: latin(
    'SRISUK|WONGSAWAT|CHAIYAPORN|SAETANG|BOONMA|KAEWKLA|THONGDEE|SUKSAWAT|RATTANAPHON|PHROMMA',
    'SOMCHAI|SOMSAK|ANAN|PRASERT|WICHAI|SURACHAI|NATTAPONG|KITTI',
    'SUDARAT|PORNTIP|SUNISA|KANYA|MALEE|NAPHAT|SIRIPORN|WANIDA',
  ),
  [Culture.India]: latin(
    'SHARMA|PATEL|SINGH|KUMAR|GUPTA|REDDY|IYER|NAIR|RAO|JOSHI|MEHTA|DAS',
    'RAHUL|AMIT|VIKRAM|ARJUN|SURESH|RAJESH|ANIL|SANJAY',
    'PRIYA|ANJALI|DEEPA|KAVYA|NEHA|POOJA|SUNITA|LAKSHMI',
  ),
  [Culture.English]: latin(
    'SMITH|JOHNSON|WILLIAMS|BROWN|JONES|MILLER|DAVIS|WILSON|ANDERSON|TAYLOR|THOMAS|MOORE|MARTIN|WHITE|HARRIS|CLARK|LEWIS|WALKER|HALL|YOUNG|KING|WRIGHT|SCOTT|GREEN|BAKER|ADAMS|NELSON|CAMPBELL|MITCHELL',
    'JAMES|JOHN|ROBERT|MICHAEL|WILLIAM|DAVID|RICHARD|JOSEPH|THOMAS|DANIEL|MATTHEW|ANDREW|CHRISTOPHER|RYAN|KEVIN',
    'MARY|JENNIFER|LINDA|ELIZABETH|SARAH|JESSICA|EMILY|EMMA|OLIVIA|HANNAH|LAURA|RACHEL|KATHERINE|MEGAN',
  ),
  [Culture.German]: latin(
    'MUELLER|SCHMIDT|SCHNEIDER|FISCHER|WEBER|MEYER|WAGNER|BECKER|SCHULZ|HOFFMANN|KOCH|RICHTER|KLEIN|WOLF',
    'LUKAS|JONAS|FELIX|MAXIMILIAN|PAUL|LEON|TOBIAS|STEFAN|ANDREAS|MICHAEL',
    'ANNA|LEA|SOPHIE|KATHARINA|LAURA|JULIA|MARIE|LENA|SABINE',
  ),
  [Culture.French]: latin(
    'MARTIN|BERNARD|DUBOIS|THOMAS|ROBERT|RICHARD|PETIT|DURAND|LEROY|MOREAU|SIMON|LAURENT|LEFEBVRE|MICHEL|GARCIA',
    'JEAN|PIERRE|LOUIS|HUGO|NICOLAS|THOMAS|ANTOINE|JULIEN|MATHIEU|JEAN-PIERRE',
    'CAMILLE|CHLOE|MANON|LEA|MARIE|SOPHIE|JULIE|CLAIRE|ELODIE|MARIE-CLAIRE',
  ),
  // Malay names are "GIVEN BIN/BINTI FATHER"; the father's names stand in for surnames.
  [Culture.Malaysia]: latin('ISMAIL|ABDULLAH|HASSAN|IBRAHIM|OSMAN|RAHMAN|YUSOF|ZAKARIA', 'AHMAD|MUHAMMAD|MOHD HAFIZ|AZMAN|FAIZAL|AMIRUL', 'NUR AISYAH|SITI|FARAH|NURUL|AINA|SYAFIQAH'),
};

// ---------------------------------------------------------------------------------------------
// Nationalities

/**
 * Passport number shapes: `@` a letter, `#` a digit, `*` a letter or digit (German style, no vowels),
 * anything else literal.
 */
type PassportOp = string | 0 | 1 | 2;
function compilePassport(pattern: string): PassportOp[] {
  return [...pattern].map((ch) => (ch === '@' ? 0 : ch === '#' ? 1 : ch === '*' ? 2 : ch));
}
const LETTERS = 'ABCDEFGHJKLMNPRSTUVWXYZ';
const ALNUM = '0123456789CFGHJKLMNPRTVWXYZ';

interface Nationality {
  code: string;
  culture: Culture;
  passport: PassportOp[];
  /** Visa-exempt entry for ordinary visitors. */
  exempt: boolean;
  permits: Weighted<PermitType>;
}

const PERMITS_MIGRANT = (work: number, study: number, family: number, professional: number, missionary = 0) =>
  new Weighted<PermitType>(
    (
      [
        ['migrant-work', work],
        ['study', study],
        ['family', family],
        ['professional', professional],
        ['missionary', missionary],
      ] as const
    ).filter(([, w]) => w > 0),
  );
const PERMITS_PROFESSIONAL = new Weighted<PermitType>([
  ['professional', 35],
  ['family', 20],
  ['study', 20],
  ['gold-card', 8],
  ['permanent', 8],
  ['investment', 5],
  ['missionary', 4],
]);

const NAT_TABLE: Record<string, [Culture, string, boolean, Weighted<PermitType>]> = {
  TWN: [Culture.Taiwan, '3########', false, PERMITS_PROFESSIONAL],
  JPN: [Culture.Japan, '@@#######', true, PERMITS_PROFESSIONAL],
  KOR: [Culture.Korea, 'M###@####', true, PERMITS_PROFESSIONAL],
  USA: [Culture.English, '@########', true, PERMITS_PROFESSIONAL],
  GBR: [Culture.English, '#########', true, PERMITS_PROFESSIONAL],
  CAN: [Culture.English, '@@######', true, PERMITS_PROFESSIONAL],
  AUS: [Culture.English, 'P@#######', true, PERMITS_PROFESSIONAL],
  NZL: [Culture.English, 'L@######', true, PERMITS_PROFESSIONAL],
  DEU: [Culture.German, 'C********', true, PERMITS_PROFESSIONAL],
  FRA: [Culture.French, '##@@#####', true, PERMITS_PROFESSIONAL],
  SGP: [Culture.SeaChinese, 'K#######@', true, PERMITS_PROFESSIONAL],
  MYS: [Culture.Malaysia, '@########', true, new Weighted<PermitType>([['study', 45], ['professional', 30], ['family', 10], ['permanent', 5], ['investment', 5], ['gold-card', 5]])],
  HKG: [Culture.HongKong, 'K########', false, new Weighted<PermitType>([['investment', 25], ['professional', 25], ['family', 20], ['study', 20], ['permanent', 10]])],
  MAC: [Culture.HongKong, 'MA#######', false, new Weighted<PermitType>([['study', 35], ['family', 25], ['professional', 20], ['investment', 10], ['permanent', 10]])],
  CHN: [Culture.Mainland, 'E########', false, new Weighted<PermitType>([['family', 80], ['study', 10], ['investment', 5], ['professional', 5]])],
  VNM: [Culture.Vietnam, '@#######', false, PERMITS_MIGRANT(75, 10, 12, 3)],
  IDN: [Culture.Indonesia, '@#######', false, PERMITS_MIGRANT(88, 6, 4, 2)],
  PHL: [Culture.Philippines, 'P#######@', true, PERMITS_MIGRANT(85, 3, 5, 5, 2)],
  THA: [Culture.Thailand, '@@#######', true, PERMITS_MIGRANT(85, 4, 6, 5)],
  IND: [Culture.India, '@#######', false, new Weighted<PermitType>([['professional', 50], ['study', 30], ['family', 10], ['gold-card', 10]])],
};
const NAT = new Map<string, Nationality>(
  Object.entries(NAT_TABLE).map(([code, [culture, pattern, exempt, permits]]) => [code, { code, culture, passport: compilePassport(pattern), exempt, permits }]),
);
export const NATIONALITIES: readonly string[] = [...NAT.keys()];
const nat = (code: string) => NAT.get(code)!;
const natWeights = (spec: string) =>
  new Weighted<Nationality>(
    spec.split(' ').map((s) => {
      const [code, w] = s.split(':');
      return [nat(code), Number(w)] as const;
    }),
  );
/** Roughly visitor arrivals by market (thousands a year). */
const VISITOR_NATIONALITIES = natWeights('JPN:1320 KOR:1000 HKG:800 MAC:100 USA:700 MYS:500 SGP:420 THA:420 VNM:430 PHL:380 IDN:200 CHN:400 GBR:100 DEU:90 FRA:80 AUS:120 CAN:130 NZL:30 IND:60');
/** Roughly resident-certificate holders by nationality (thousands). */
const RESIDENT_NATIONALITIES = natWeights('VNM:320 IDN:300 PHL:160 THA:75 JPN:18 MYS:20 USA:13 KOR:7 IND:6 CHN:30 HKG:15 MAC:5 GBR:3 DEU:2 FRA:2 CAN:3 AUS:2 SGP:2 NZL:1');
const TWN = nat('TWN');

// ---------------------------------------------------------------------------------------------
// Calendar

const DAY_MS = 86_400_000;
const BIRTH_FIRST = Date.UTC(1940, 0, 1) / DAY_MS;
const BIRTH_LAST = Date.UTC(2008, 11, 31) / DAY_MS;
const YEAR_DAYS = 365.2425;

/** YYYY-MM-DD for every day from 1940 to a few years after the anchor, so rows only index strings. */
class DayTable {
  readonly first = BIRTH_FIRST;
  readonly text: string[] = [];
  readonly y: Uint16Array;
  readonly m: Uint8Array;
  readonly d: Uint8Array;

  constructor(readonly last: number) {
    const n = last - this.first + 1;
    this.y = new Uint16Array(n);
    this.m = new Uint8Array(n);
    this.d = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const iso = new Date((this.first + i) * DAY_MS).toISOString();
      this.text.push(iso.slice(0, 10));
      this.y[i] = Number(iso.slice(0, 4));
      this.m[i] = Number(iso.slice(5, 7));
      this.d[i] = Number(iso.slice(8, 10));
    }
  }

  at(day: number): string {
    return this.text[day - this.first];
  }

  /** The day before the same date `years` later: the last day of a permit valid for that many years. */
  plusYears(day: number, years: number): number {
    const i = day - this.first;
    return Date.UTC(this.y[i] + years, this.m[i] - 1, this.d[i]) / DAY_MS - 1;
  }
}

const tablesByAnchor = new Map<number, DayTable>();
function dayTable(anchor: number): DayTable {
  let t = tablesByAnchor.get(anchor);
  if (!t) tablesByAnchor.set(anchor, (t = new DayTable(anchor + 4 * 366)));
  return t;
}

/** Crossings follow flight banks: few at night, most from morning to late evening. */
const HOURS = new Weighted(
  [1, 0.5, 0.3, 0.3, 0.5, 1, 3, 5, 7, 7, 7, 6, 6, 6, 6, 6, 6, 7, 7, 7, 6, 5, 4, 2].map((w, h) => [h, w] as const),
);
const HHMM = Array.from({ length: 1440 }, (_, i) => `T${pad(Math.floor(i / 60), 2)}:${pad(i % 60, 2)}`);
const SS_TAIPEI = Array.from({ length: 60 }, (_, s) => `:${pad(s, 2)}+08:00`);

const AGE_BRACKETS = new Weighted<readonly [number, number]>([
  [[18, 30], 25],
  [[30, 45], 30],
  [[45, 60], 25],
  [[60, 85], 15],
  [[17, 18], 5],
]);
const PERMIT_AGES: Record<PermitType, readonly [number, number]> = {
  'migrant-work': [20, 50],
  study: [18, 32],
  professional: [23, 62],
  'gold-card': [25, 62],
  investment: [30, 72],
  missionary: [25, 72],
  family: [18, 80],
  permanent: [30, 85],
};

// ---------------------------------------------------------------------------------------------
// Addresses and employers

const ROADS = uniform(bars('中山路|中正路|民生路|民權路|民族路|復興路|建國路|和平路|信義路|仁愛路|光復路|中華路|自由路|成功路|文化路|大同路|中興路|忠孝路|博愛路|公園路|林森路|新生路|三民路|五福路|中山北路|忠孝東路|民生東路'));
const SECTIONS = ['', '', '', '一段', '二段', '三段', '四段'];
const FIRMS = uniform(bars('宏昌|建興|永信|台隆|大成|長興|新達|華勝|正泰|冠群|協和|金豐|順益|立昌|三聯|全億|國瑞|鼎新|榮達|佳和|振宇|聯勝|福懋|源豐|東陽|益昇|欣隆|裕元'));
const FACTORY_TRADES = uniform(bars('精密工業|電子|紡織|塑膠|機械|食品|金屬|光電|化學|汽車零件|印刷|包裝|纖維|鋼鐵|橡膠|模具'));
const OFFICE_TRADES = uniform(bars('科技|國際貿易|資訊|生技|管理顧問|半導體|網路|設計|投資'));
const SCHOOLS = uniform(
  bars(
    '國立臺灣大學|國立政治大學|國立清華大學|國立陽明交通大學|國立成功大學|國立臺灣師範大學|國立臺灣師範大學國語教學中心|國立中央大學|國立中山大學|國立臺灣科技大學|淡江大學|輔仁大學|東海大學|逢甲大學|中原大學|銘傳大學|文藻外語大學|國立高雄科技大學|義守大學|國立屏東科技大學',
  ),
);

// ---------------------------------------------------------------------------------------------
// Fields

type FieldType = FieldCatalog['type'];
const ENTRY_EXIT_FIELDS = [
  ['person_id', 'string'],
  ['name_en', 'string'],
  ['name_zh', 'string'],
  ['nationality', 'string'],
  ['birth_date', 'date'],
  ['sex', 'string'],
  ['passport_no', 'string'],
  ['direction', 'string'],
  ['crossed_at', 'datetime'],
  ['port', 'string'],
  ['flight_no', 'string'],
  ['visa_type', 'string'],
  ['travel_doc_type', 'string'],
] as const satisfies ReadonlyArray<readonly [string, FieldType]>;
const RESIDENCE_FIELDS = [
  ['arc_no', 'string'],
  ['name_en', 'string'],
  ['name_zh', 'string'],
  ['nationality', 'string'],
  ['birth_date', 'date'],
  ['sex', 'string'],
  ['passport_no', 'string'],
  ['permit_type', 'string'],
  ['issued_on', 'date'],
  ['expires_on', 'date'],
  ['address', 'string'],
  ['employer', 'string'],
  ['status', 'string'],
] as const satisfies ReadonlyArray<readonly [string, FieldType]>;

/** The fields each dataset's generator produces, with the catalog type each must have. */
export const GENERATED_FIELDS: Readonly<Record<string, ReadonlyArray<readonly [string, FieldType]>>> = {
  entry_exit: ENTRY_EXIT_FIELDS,
  residence: RESIDENCE_FIELDS,
};

// ---------------------------------------------------------------------------------------------
// Generators

export interface GeneratorOptions {
  /** 0 … 2³² − 1. */
  seed: number;
  /** How many rows the dataset will have: sizes the traveller populations, so repeat visits occur. */
  rows: number;
  /** Anchors recent dates on its Taipei calendar day. */
  now: Date;
}

export interface RowGenerator {
  readonly dataset: string;
  /** The catalog's field names, in catalog order. */
  readonly columns: readonly string[];
  /** Writes row `index`'s values (strings or null) into out[offset] … out[offset + columns.length − 1]. */
  fill(index: number, out: unknown[], offset: number): void;
}

const enum Pop {
  Citizen,
  Visitor,
  Resident,
}

/** The person a row is about; one instance per generator, overwritten for each row. */
class Person {
  nat: Nationality = TWN;
  sex = 'M';
  birthDate = '';
  nameZh: string | null = null;
  nameEn = '';
  passport = '';
  id = '';
  city: City = CITIES.items[0];
  permit: PermitType = 'professional';
}

abstract class Generator implements RowGenerator {
  readonly columns: readonly string[];
  protected readonly days: DayTable;
  protected readonly anchor: number;
  protected readonly rng = new Sfc32();
  protected readonly p = new Person();
  /** Values in the generator's own field order; `map` picks the catalog's columns out of it. */
  protected readonly vals: (string | null)[];
  private readonly map: Int32Array;
  private readonly rowSeed: number;
  private readonly popSeed: number[];

  constructor(
    readonly dataset: string,
    catalog: DatasetCatalog,
    known: ReadonlyArray<readonly [string, FieldType]>,
    opts: GeneratorOptions,
  ) {
    if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) throw new RangeError(`seed must be an integer from 0 to 4294967295, not ${opts.seed}`);
    if (!Number.isInteger(opts.rows) || opts.rows < 0) throw new RangeError(`rows must be a non-negative integer, not ${opts.rows}`);
    const problems: string[] = [];
    for (const f of catalog.fields) {
      const k = known.find(([name]) => name === f.name);
      if (!k) problems.push(`no generator for field '${f.name}'`);
      else if (k[1] !== f.type) problems.push(`field '${f.name}' is ${f.type} in the catalog but generated as ${k[1]}`);
    }
    if (problems.length) throw new Error(`synthetic ${dataset}: ${problems.join('; ')}`);
    this.columns = catalog.fields.map((f) => f.name);
    this.map = Int32Array.from(this.columns, (c) => known.findIndex(([name]) => name === c));
    this.vals = new Array<string | null>(known.length).fill(null);

    const t = opts.now.getTime();
    if (!Number.isFinite(t) || t < Date.UTC(2010, 0, 1)) throw new RangeError('now must be a date after 2010 (birth dates run to 2008)');
    this.anchor = Math.floor((t + 8 * 3600_000) / DAY_MS);
    this.days = dayTable(this.anchor);

    const seed = mix32(opts.seed ^ 0x5eed5eed);
    this.rowSeed = mix32(seed ^ hashString(dataset));
    // Not salted with the dataset: resident k must be the same person in every dataset.
    this.popSeed = [mix32(seed ^ 0x1001), mix32(seed ^ 0x2002), mix32(seed ^ 0x3003)];
  }

  fill(index: number, out: unknown[], offset: number): void {
    this.rng.reset(this.rowSeed, mix32(index), mix32(index ^ this.rowSeed));
    this.generate(index);
    const map = this.map;
    const vals = this.vals;
    for (let j = 0; j < map.length; j++) out[offset + j] = vals[map[j]];
  }

  protected abstract generate(index: number): void;

  /** Person k of a population, from its own PRNG (left positioned after the person for callers to continue). */
  protected person(pop: Pop, k: number, r: Sfc32): Person {
    r.reset(this.popSeed[pop], mix32(k), mix32(k ^ this.popSeed[pop]));
    const p = this.p;
    const n = (p.nat = pop === Pop.Citizen ? TWN : pop === Pop.Visitor ? VISITOR_NATIONALITIES.pick(r) : RESIDENT_NATIONALITIES.pick(r));
    if (pop === Pop.Resident) p.permit = n.permits.pick(r);
    p.sex = this.sex(pop, n, r);
    const [minAge, maxAge] = pop === Pop.Resident ? PERMIT_AGES[p.permit] : AGE_BRACKETS.pick(r);
    p.birthDate = this.birthDate(minAge, maxAge, r);
    this.name(n.culture, p.sex, r);
    p.passport = passportNo(n.passport, r);
    p.city = CITIES.pick(r);
    const female = p.sex === 'F' || (p.sex === 'X' && r.chance(0.5));
    p.id = taiwanId(p.city.letter, pop === Pop.Citizen ? (female ? 2 : 1) : female ? 9 : 8, r);
    return p;
  }

  private sex(pop: Pop, n: Nationality, r: Sfc32): string {
    if (r.chance(0.003)) return 'X';
    let female = 0.5;
    // Care work is mostly done by Indonesian and Filipino women, factory work mostly by Vietnamese and Thai men.
    if (pop === Pop.Resident && this.p.permit === 'migrant-work') female = n.code === 'IDN' || n.code === 'PHL' ? 0.75 : 0.35;
    else if (pop === Pop.Resident && this.p.permit === 'family') female = 0.8;
    return r.chance(female) ? 'F' : 'M';
  }

  private birthDate(minAge: number, maxAge: number, r: Sfc32): string {
    let lo = Math.max(BIRTH_FIRST, Math.ceil(this.anchor - maxAge * YEAR_DAYS));
    let hi = Math.min(BIRTH_LAST, Math.floor(this.anchor - minAge * YEAR_DAYS));
    if (lo > hi) {
      lo = BIRTH_FIRST;
      hi = BIRTH_LAST;
    }
    return this.days.at(lo + r.below(hi - lo + 1));
  }

  private name(culture: Culture, sex: string, r: Sfc32): void {
    const p = this.p;
    const male = sex === 'M' || (sex === 'X' && r.chance(0.5));
    switch (culture) {
      case Culture.Taiwan:
      case Culture.Mainland:
      case Culture.HongKong:
      case Culture.SeaChinese: {
        const s = HAN_SURNAMES.pick(r);
        const given = male ? HAN_MALE : HAN_FEMALE;
        const g1 = given.pick(r);
        const g2 = r.chance(0.92) ? given.pick(r) : null;
        p.nameZh = g2 ? s.zh + g1.zh + g2.zh : s.zh + g1.zh;
        if (culture === Culture.Taiwan) {
          // Most Taiwan passports use Wade-Giles; since 2009 some holders chose Hanyu Pinyin.
          const wg = r.chance(0.8);
          const a = wg ? g1.wg : g1.py;
          p.nameEn = (wg ? s.wg : s.py) + ', ' + (g2 ? a + '-' + (wg ? g2.wg : g2.py) : a);
        } else if (culture === Culture.Mainland) {
          p.nameEn = s.py + ', ' + (g2 ? g1.py + g2.py : g1.py);
        } else if (culture === Culture.HongKong) {
          p.nameEn = s.yue + ', ' + (g2 ? g1.yue + ' ' + g2.yue : g1.yue);
        } else {
          p.nameEn = s.hok + ', ' + (g2 ? g1.py + ' ' + g2.py : g1.py);
        }
        return;
      }
      case Culture.Vietnam: {
        const s = VN_SURNAMES.pick(r);
        const g = (male ? VN_MALE : VN_FEMALE).pick(r);
        const middle = male ? (r.chance(0.85) ? ['VAN', '文'] : ['DUC', '德']) : r.chance(0.85) ? ['THI', '氏'] : ['NGOC', '玉'];
        p.nameEn = s[0] + ', ' + middle[0] + ' ' + g[0];
        p.nameZh = s[1] + middle[1] + g[1];
        return;
      }
      case Culture.Japan:
      case Culture.Korea: {
        const jp = culture === Culture.Japan;
        const s = (jp ? JP_SURNAMES : KR_SURNAMES).pick(r);
        const g = (jp ? (male ? JP_MALE : JP_FEMALE) : male ? KR_MALE : KR_FEMALE).pick(r);
        p.nameEn = s[0] + ', ' + g[0];
        p.nameZh = s[1] + g[1];
        return;
      }
      case Culture.Malaysia: {
        // Roughly a quarter of Malaysians are of Chinese descent, and many of them come to Taiwan.
        if (r.chance(0.55)) return this.name(Culture.SeaChinese, male ? 'M' : 'F', r);
        const l = LATIN[Culture.Malaysia]!;
        p.nameEn = (male ? l.male : l.female).pick(r) + (male ? ' BIN ' : ' BINTI ') + l.surnames.pick(r);
        p.nameZh = null;
        return;
      }
      default: {
        const l = LATIN[culture]!;
        const given = male ? l.male : l.female;
        p.nameZh = null;
        // Many Indonesians have a single name, which passports print alone.
        if (culture === Culture.Indonesia && r.chance(0.15)) p.nameEn = given.pick(r);
        else if ((culture === Culture.English || culture === Culture.German) && r.chance(0.4)) p.nameEn = l.surnames.pick(r) + ', ' + given.pick(r) + ' ' + given.pick(r);
        else p.nameEn = l.surnames.pick(r) + ', ' + given.pick(r);
      }
    }
  }
}

function passportNo(ops: PassportOp[], r: Sfc32): string {
  let s = '';
  for (const op of ops) {
    if (op === 0) s += LETTERS[r.below(LETTERS.length)];
    else if (op === 1) s += String.fromCharCode(48 + r.below(10));
    else if (op === 2) s += ALNUM[r.below(ALNUM.length)];
    else s += op;
  }
  return s;
}

const CITIZEN_SHARE = 0.58;
const VISITOR_SHARE = 0.32;

class EntryExitGenerator extends Generator {
  private readonly pr = new Sfc32();
  private readonly popSize: number[];

  constructor(catalog: DatasetCatalog, opts: GeneratorOptions) {
    super('entry_exit', catalog, ENTRY_EXIT_FIELDS, opts);
    // A citizen crosses about four times (two trips), a visitor twice, a resident three times.
    const n = opts.rows;
    this.popSize = [Math.max(1, Math.ceil((n * CITIZEN_SHARE) / 4)), Math.max(1, Math.ceil((n * VISITOR_SHARE) / 2)), Math.max(1, Math.ceil((n * (1 - CITIZEN_SHARE - VISITOR_SHARE)) / 3))];
  }

  protected generate(): void {
    const r = this.rng;
    const v = this.vals;
    const u = r.u32() / 4294967296;
    const pop = u < CITIZEN_SHARE ? Pop.Citizen : u < CITIZEN_SHARE + VISITOR_SHARE ? Pop.Visitor : Pop.Resident;
    const p = this.person(pop, r.below(this.popSize[pop]), this.pr);
    const n = p.nat;
    v[0] = p.id;
    v[1] = p.nameEn;
    v[2] = p.nameZh;
    v[3] = n.code;
    v[4] = p.birthDate;
    v[5] = p.sex;
    v[6] = p.passport;
    v[7] = r.u32() < 0x80000000 ? 'entry' : 'exit';
    // Up to yesterday (Taipei), so no crossing lies in the future of `now`.
    const day = this.anchor - 1 - r.below(1095);
    v[8] = this.days.at(day) + HHMM[HOURS.pick(r) * 60 + r.below(60)] + SS_TAIPEI[r.below(60)];
    // The "mini three links" ferries carry much of the Kinmen–Xiamen traffic.
    const port = n.code === 'CHN' && r.chance(0.2) ? PORTS[KINMEN_FERRY] : PORT_PICK.pick(r);
    v[9] = port.code;
    if (port.kind === 'air') {
      const carriers = FLIGHTS_BY_PORT.get(port.code)!;
      v[10] = carriers[r.below(carriers.length)][r.below(999)];
    } else {
      const vessels = VESSELS_BY_PORT[port.code];
      v[10] = `${vessels[r.below(vessels.length)]} ${pad(1 + r.below(999), 3)}${r.chance(0.5) ? 'N' : 'S'}`;
    }
    v[11] = this.visa(pop, n, r);
    v[12] = this.document(pop, n, r);
  }

  private visa(pop: Pop, n: Nationality, r: Sfc32): string | null {
    if (pop === Pop.Citizen) return null;
    if (pop === Pop.Resident) return 'resident';
    if (n.code === 'CHN' || n.code === 'HKG' || n.code === 'MAC') return 'entry-permit';
    if (n.exempt) return r.chance(0.93) ? 'visa-exempt' : 'visitor';
    const x = r.below(100);
    return x < 45 ? 'visitor' : x < 80 ? 'e-visa' : x < 98 ? 'travel-authorization' : 'landing';
  }

  private document(pop: Pop, n: Nationality, r: Sfc32): string {
    if (pop === Pop.Citizen) return r.chance(0.02) ? 'entry-exit-permit' : 'passport';
    if (n.code === 'CHN') return 'mainland-travel-permit';
    return r.chance(0.004) ? 'travel-document' : 'passport';
  }
}

class ResidenceGenerator extends Generator {
  constructor(catalog: DatasetCatalog, opts: GeneratorOptions) {
    super('residence', catalog, RESIDENCE_FIELDS, opts);
  }

  protected generate(index: number): void {
    // Row index k is resident k, so entry_exit's resident crossings point at these rows.
    const r = this.rng;
    const p = this.person(Pop.Resident, index, r);
    const v = this.vals;
    v[0] = p.id;
    v[1] = p.nameEn;
    v[2] = p.nameZh;
    v[3] = p.nat.code;
    v[4] = p.birthDate;
    v[5] = p.sex;
    v[6] = p.passport;
    v[7] = p.permit;
    // Mostly recent permits, with a tail of older ones that have since run out.
    const issued = r.chance(0.75) ? this.anchor - r.below(3 * 365) : this.anchor - 3 * 365 - r.below(6 * 365);
    v[8] = this.days.at(issued);
    let expires: number | null = null;
    if (p.permit !== 'permanent') {
      const years = p.permit === 'study' ? 1 : 1 + r.below(3);
      expires = this.days.plusYears(issued, years);
    }
    v[9] = expires === null ? null : this.days.at(expires);
    v[10] = this.address(p.city, r);
    v[11] = this.employer(p, r);
    v[12] = r.chance(0.02) ? 'revoked' : expires !== null && expires < this.anchor ? 'expired' : 'valid';
  }

  private address(city: City, r: Sfc32): string {
    let s = city.zh + city.districts[r.below(city.districts.length)] + ROADS.pick(r) + SECTIONS[r.below(SECTIONS.length)];
    if (r.chance(0.3)) {
      s += 1 + r.below(200) + '巷';
      if (r.chance(0.25)) s += 1 + r.below(30) + '弄';
    }
    s += 1 + r.below(400) + '號';
    if (r.chance(0.6)) s += 2 + r.below(14) + '樓';
    return s;
  }

  private employer(p: Person, r: Sfc32): string | null {
    const company = (trades: Weighted<string>) => FIRMS.pick(r) + trades.pick(r) + (r.chance(0.7) ? '股份有限公司' : '有限公司');
    switch (p.permit) {
      case 'migrant-work': {
        const care = p.sex === 'F' ? r.chance(0.6) : r.chance(0.1);
        if (care) {
          // Home caregivers are employed by the family; others by a care home.
          if (r.chance(0.6)) return HAN_SURNAMES.pick(r).zh + HAN_MALE.pick(r).zh + HAN_FEMALE.pick(r).zh;
          return p.city.zh + '私立' + FIRMS.pick(r) + (r.chance(0.5) ? '護理之家' : '老人長期照顧中心');
        }
        if (r.chance(0.1)) return FIRMS.pick(r) + '漁業有限公司';
        if (r.chance(0.1)) return FIRMS.pick(r) + '營造股份有限公司';
        return company(FACTORY_TRADES);
      }
      case 'study':
        return SCHOOLS.pick(r);
      case 'professional':
      case 'gold-card':
      case 'investment':
        return company(OFFICE_TRADES);
      case 'missionary':
        return r.chance(0.5) ? '台灣基督長老教會' + FIRMS.pick(r) + '教會' : '天主教' + FIRMS.pick(r) + '堂';
      case 'permanent':
        return r.chance(0.6) ? company(OFFICE_TRADES) : null;
      case 'family':
        return null;
    }
  }
}

/**
 * A generator for one dataset. Fails when the catalog has a field this module cannot produce, or
 * one whose type differs from what it produces: silently missing columns would go unnoticed until
 * a delivery.
 */
export function createGenerator(catalog: DatasetCatalog, opts: GeneratorOptions): RowGenerator {
  switch (catalog.name) {
    case 'entry_exit':
      return new EntryExitGenerator(catalog, opts);
    case 'residence':
      return new ResidenceGenerator(catalog, opts);
    default:
      throw new Error(`synthetic data: no generator for dataset '${catalog.name}'`);
  }
}
