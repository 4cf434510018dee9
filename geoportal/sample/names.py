"""Names that make the synthetic corpus read like a Taichung agency's data.

Districts carry approximate real centres (lon, lat) so that a Voronoi partition of the city
outline puts each one roughly where it belongs; themes mirror what a city's agencies really
hand in, with data.gov.tw service categories and update frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass

CITY = "臺中市"
CITY_EN = "Taichung City"
CITY_PREFIX = "臺中市政府"

# Rough outline of Taichung (lon, lat), inside 120.46–121.45E, 23.99–24.44N.
OUTLINE: tuple[tuple[float, float], ...] = (
    (120.462, 24.205),
    (120.520, 24.300),
    (120.575, 24.385),
    (120.690, 24.432),
    (120.850, 24.418),
    (121.000, 24.440),
    (121.150, 24.402),
    (121.300, 24.385),
    (121.448, 24.300),
    (121.402, 24.205),
    (121.250, 24.152),
    (121.050, 24.122),
    (120.905, 24.032),
    (120.750, 23.992),
    (120.622, 24.020),
    (120.522, 24.100),
)

# (name, English name, code suffix, lon, lat) — the 29 districts with approximate centres.
DISTRICTS: tuple[tuple[str, str, str, float, float], ...] = (
    ("中區", "Central", "0010", 120.680, 24.143),
    ("東區", "East", "0020", 120.697, 24.137),
    ("南區", "South", "0030", 120.665, 24.120),
    ("西區", "West", "0040", 120.663, 24.142),
    ("北區", "North", "0050", 120.683, 24.160),
    ("西屯區", "Xitun", "0060", 120.630, 24.180),
    ("南屯區", "Nantun", "0070", 120.620, 24.135),
    ("北屯區", "Beitun", "0080", 120.730, 24.185),
    ("豐原區", "Fengyuan", "0090", 120.720, 24.250),
    ("東勢區", "Dongshi", "0100", 120.830, 24.260),
    ("大甲區", "Dajia", "0110", 120.620, 24.350),
    ("清水區", "Qingshui", "0120", 120.560, 24.280),
    ("沙鹿區", "Shalu", "0130", 120.570, 24.235),
    ("梧棲區", "Wuqi", "0140", 120.530, 24.255),
    ("后里區", "Houli", "0150", 120.720, 24.310),
    ("神岡區", "Shengang", "0160", 120.665, 24.265),
    ("潭子區", "Tanzi", "0170", 120.705, 24.215),
    ("大雅區", "Daya", "0180", 120.640, 24.225),
    ("新社區", "Xinshe", "0190", 120.830, 24.180),
    ("石岡區", "Shigang", "0200", 120.780, 24.275),
    ("外埔區", "Waipu", "0210", 120.660, 24.335),
    ("大安區", "Da'an", "0220", 120.590, 24.360),
    ("烏日區", "Wuri", "0230", 120.620, 24.080),
    ("大肚區", "Dadu", "0240", 120.560, 24.150),
    ("龍井區", "Longjing", "0250", 120.530, 24.200),
    ("霧峰區", "Wufeng", "0260", 120.720, 24.050),
    ("太平區", "Taiping", "0270", 120.770, 24.120),
    ("大里區", "Dali", "0280", 120.690, 24.100),
    ("和平區", "Heping", "0290", 121.150, 24.300),
)
CITY_CODE = "66000"

# Urban cores: (lon, lat, weight, spread in degrees) for clustering points and buildings.
URBAN_CORES: tuple[tuple[float, float, float, float], ...] = (
    (120.672, 24.150, 0.55, 0.035),
    (120.718, 24.252, 0.10, 0.015),
    (120.622, 24.348, 0.06, 0.012),
    (120.562, 24.272, 0.06, 0.012),
    (120.568, 24.232, 0.06, 0.012),
    (120.700, 24.062, 0.06, 0.014),
    (120.830, 24.258, 0.04, 0.010),
    (120.690, 24.102, 0.07, 0.015),
)

# Village names built from parts that real Taiwanese villages use.
VILLAGE_HEADS = (
    "福",
    "和",
    "平",
    "安",
    "興",
    "仁",
    "義",
    "忠",
    "孝",
    "德",
    "中",
    "東",
    "西",
    "南",
    "北",
    "新",
    "永",
    "光",
    "明",
    "長",
    "大",
    "文",
    "昌",
    "順",
    "豐",
    "成",
    "山",
    "水",
    "田",
    "林",
)
VILLAGE_TAILS = (
    "星",
    "平",
    "德",
    "安",
    "興",
    "榮",
    "美",
    "富",
    "盛",
    "和",
    "正",
    "民",
    "生",
    "華",
    "林",
    "山",
    "湖",
    "埔",
    "坑",
    "寮",
    "厝",
    "田",
    "溪",
    "港",
    "竹",
    "園",
    "勢",
    "頭",
    "尾",
    "社",
)

# Village names written with Big5 vendor-extension characters (absent from CP950). The byte
# codes come from the Big5-HKSCS table, where the mapping exists; real agency files use them
# for the same place-name characters (廍, 磘, 坔, 槺, 塩).
VENDOR_VILLAGES = ("後廍里", "磘仔里", "坔頭里", "槺榔里", "塩埕里", "頂廍里")

ROAD_NAMES = (
    "臺灣大道",
    "文心路",
    "中清路",
    "五權路",
    "崇德路",
    "向上路",
    "大墩路",
    "河南路",
    "西屯路",
    "黎明路",
    "環中路",
    "中港路",
    "太原路",
    "英才路",
    "進化路",
    "復興路",
    "建國路",
    "中山路",
    "民權路",
    "公益路",
    "精誠路",
    "忠明路",
    "博館路",
    "市政路",
    "惠中路",
    "大業路",
    "永春路",
    "豐原大道",
    "中正路",
    "三民路",
    "成功路",
    "光復路",
    "自由路",
    "雙十路",
    "東山路",
    "北屯路",
)
ROAD_KINDS = ("快速道路", "主要道路", "次要道路", "服務道路", "產業道路")

STREET_NAMES = ROAD_NAMES[:24]

# Plan areas of urban planning (都市計畫) used for zoning layers.
PLAN_AREAS = (
    "臺中市都市計畫",
    "大坑風景區",
    "東勢",
    "豐原",
    "大甲",
    "清水",
    "沙鹿",
    "梧棲",
    "后里",
    "神岡",
    "潭子",
    "大雅",
    "新社",
    "石岡",
    "外埔",
    "烏日",
    "大肚",
    "龍井",
    "霧峰",
    "太平",
    "大里",
    "臺中港特定區",
    "高鐵臺中站地區",
    "水湳機場原址",
    "烏日溪南",
)
ZONE_KINDS = (
    ("住宅區", "R", "255,255,0"),
    ("商業區", "C", "255,0,0"),
    ("工業區", "I", "160,32,240"),
    ("農業區", "A", "0,200,0"),
    ("保護區", "P", "0,120,0"),
    ("公園用地", "PK", "0,255,128"),
    ("學校用地", "S", "0,128,255"),
    ("道路用地", "RD", "200,200,200"),
)

# data.gov.tw service categories (服務分類).
CATEGORIES = (
    "生育保健",
    "出生及收養",
    "求學及進修",
    "服兵役",
    "求職及就業",
    "開創事業",
    "婚姻",
    "投資理財",
    "休閒旅遊",
    "交通及通訊",
    "就醫",
    "購屋及遷徙",
    "選舉及投票",
    "生活安全及品質",
    "退休",
    "老年安養",
    "生命禮儀",
    "公共資訊",
)

# Update frequencies as agencies spell them — the inconsistencies are part of the data.
FREQUENCIES = ("每月", "每季", "每半年", "每年", "不定期", "不定時", "每日", "每週", "即時")

# (short name, English name)
AGENCIES: tuple[tuple[str, str], ...] = (
    ("民政局", "Civil Affairs Bureau"),
    ("財政局", "Finance Bureau"),
    ("教育局", "Education Bureau"),
    ("經濟發展局", "Economic Development Bureau"),
    ("建設局", "Construction Bureau"),
    ("交通局", "Transportation Bureau"),
    ("社會局", "Social Affairs Bureau"),
    ("勞工局", "Labor Affairs Bureau"),
    ("警察局", "Police Department"),
    ("衛生局", "Public Health Bureau"),
    ("環境保護局", "Environmental Protection Bureau"),
    ("都市發展局", "Urban Development Bureau"),
    ("文化局", "Cultural Affairs Bureau"),
    ("地政局", "Land Administration Bureau"),
    ("農業局", "Agriculture Bureau"),
    ("觀光旅遊局", "Tourism and Travel Bureau"),
    ("新聞局", "Information Bureau"),
    ("消防局", "Fire Bureau"),
    ("水利局", "Water Resources Bureau"),
    ("運動局", "Sports Bureau"),
    ("原住民族事務委員會", "Indigenous Affairs Commission"),
    ("客家事務委員會", "Hakka Affairs Commission"),
    ("人事處", "Personnel Department"),
    ("主計處", "Budget, Accounting and Statistics Office"),
    ("秘書處", "Secretariat"),
    ("研究發展考核委員會", "Research, Development and Evaluation Commission"),
    ("捷運工程處", "Mass Rapid Transit Engineering Office"),
    ("住宅發展工程處", "Housing Development Office"),
    ("文化資產處", "Cultural Heritage Office"),
    ("動物保護防疫處", "Animal Protection Office"),
)


def agency_full(short: str) -> str:
    """The full agency name as it appears in a manifest, e.g. 臺中市政府交通局."""
    return f"{CITY_PREFIX}{short}"


@dataclass(frozen=True)
class Theme:
    """A kind of layer an agency hands in.

    Attributes:
        title: zh-TW title without the city prefix.
        title_en: English title.
        agency: short agency name (see AGENCIES).
        category: data.gov.tw service category.
        kind: which geometry generator draws it (points, lines, zones, ...).
        noun: what one feature is called, used to name features (e.g. 停車場).
        keywords: search keywords.
        per: "district" or "year" when the city hands it in once per district or per year.
    """

    title: str
    title_en: str
    agency: str
    category: str
    kind: str
    noun: str
    keywords: tuple[str, ...]
    per: str = ""


# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme("公有路外停車場", "Public off-street parking", "交通局", "交通及通訊", "points", "停車場", ("停車場", "交通"), "district"),
    Theme("公共自行車租賃站", "Public bike stations", "交通局", "交通及通訊", "points", "租賃站", ("iBike", "自行車"), "year"),
    Theme("公車站牌", "Bus stops", "交通局", "交通及通訊", "points", "站牌", ("公車", "站牌"), "district"),
    Theme("公車路線", "Bus routes", "交通局", "交通及通訊", "lines", "路線", ("公車", "路線")),
    Theme("自行車道", "Bike paths", "交通局", "休閒旅遊", "lines", "自行車道", ("自行車", "休閒"), "year"),
    Theme("避難收容處所", "Evacuation shelters", "消防局", "生活安全及品質", "points", "收容所", ("避難", "防災"), "district"),
    Theme("消防栓", "Fire hydrants", "消防局", "生活安全及品質", "points", "消防栓", ("消防", "防災"), "district"),
    Theme("消防隊", "Fire stations", "消防局", "生活安全及品質", "points", "消防分隊", ("消防",)),
    Theme("警察派出所", "Police stations", "警察局", "生活安全及品質", "points", "派出所", ("警察", "治安")),
    Theme("監視器設置點", "CCTV locations", "警察局", "生活安全及品質", "points", "監視器", ("監視器", "治安"), "district"),
    Theme("國民小學", "Elementary schools", "教育局", "求學及進修", "points", "國小", ("學校", "國小")),
    Theme("國民中學", "Junior high schools", "教育局", "求學及進修", "points", "國中", ("學校", "國中")),
    Theme("學區範圍", "School districts", "教育局", "求學及進修", "zones", "學區", ("學區", "學校"), "year"),
    Theme("公立幼兒園", "Public kindergartens", "教育局", "出生及收養", "points", "幼兒園", ("幼兒園", "托育")),
    Theme("醫療院所", "Medical facilities", "衛生局", "就醫", "points", "診所", ("醫院", "診所"), "year"),
    Theme("藥局", "Pharmacies", "衛生局", "就醫", "points", "藥局", ("藥局", "健保"), "year"),
    Theme("AED設置地點", "AED locations", "衛生局", "就醫", "points", "AED", ("AED", "急救"), "year"),
    Theme("產後護理機構", "Postpartum care centres", "衛生局", "生育保健", "points", "產後護理之家", ("產後", "護理")),
    Theme("長照服務據點", "Long-term care centres", "社會局", "老年安養", "points", "長照據點", ("長照", "老人"), "year"),
    Theme("托嬰中心", "Infant care centres", "社會局", "出生及收養", "points", "托嬰中心", ("托嬰", "育兒"), "year"),
    Theme("社會福利機構", "Social welfare institutions", "社會局", "老年安養", "points", "福利機構", ("社福",)),
    Theme("公園綠地", "Parks and green spaces", "建設局", "休閒旅遊", "zones", "公園", ("公園", "綠地"), "year"),
    Theme("路燈", "Street lights", "建設局", "生活安全及品質", "points", "路燈", ("路燈", "照明"), "district"),
    Theme("人行道", "Sidewalks", "建設局", "交通及通訊", "lines", "人行道", ("人行道", "步行"), "year"),
    Theme("觀光景點", "Tourist attractions", "觀光旅遊局", "休閒旅遊", "points", "景點", ("觀光", "景點"), "year"),
    Theme("旅館民宿", "Hotels and B&Bs", "觀光旅遊局", "休閒旅遊", "points", "旅館", ("住宿", "民宿"), "year"),
    Theme("登山步道", "Hiking trails", "觀光旅遊局", "休閒旅遊", "lines", "步道", ("步道", "登山")),
    Theme("古蹟及歷史建築", "Monuments and historic buildings", "文化資產處", "休閒旅遊", "points", "古蹟", ("古蹟", "文資")),
    Theme("文化景觀範圍", "Cultural landscapes", "文化資產處", "休閒旅遊", "zones", "文化景觀", ("文化景觀",)),
    Theme("圖書館", "Libraries", "文化局", "求學及進修", "points", "圖書館", ("圖書館", "閱讀")),
    Theme("公共藝術", "Public art", "文化局", "休閒旅遊", "points", "公共藝術", ("藝術",)),
    Theme("運動場館", "Sports venues", "運動局", "休閒旅遊", "points", "運動中心", ("運動", "場館"), "year"),
    Theme("資源回收站", "Recycling stations", "環境保護局", "生活安全及品質", "points", "回收站", ("回收", "環保"), "year"),
    Theme("空氣品質監測站", "Air quality stations", "環境保護局", "生活安全及品質", "points", "測站", ("空品", "監測"), "year"),
    Theme("公廁", "Public toilets", "環境保護局", "生活安全及品質", "points", "公廁", ("公廁",), "district"),
    Theme("垃圾車停靠點", "Garbage truck stops", "環境保護局", "生活安全及品質", "points", "停靠點", ("垃圾車", "清運"), "district"),
    Theme("噪音管制區", "Noise control zones", "環境保護局", "生活安全及品質", "zones", "管制區", ("噪音",)),
    Theme("雨水下水道人孔", "Storm sewer manholes", "水利局", "生活安全及品質", "points", "人孔", ("下水道", "人孔"), "district"),
    Theme("雨水下水道管線", "Storm sewer pipes", "水利局", "生活安全及品質", "lines", "管線", ("下水道",)),
    Theme("抽水站", "Pumping stations", "水利局", "生活安全及品質", "points", "抽水站", ("抽水站", "防洪")),
    Theme("淹水潛勢", "Flood potential", "水利局", "生活安全及品質", "zones", "淹水潛勢區", ("淹水", "防災"), "year"),
    Theme("河川", "Rivers", "水利局", "生活安全及品質", "lines", "河川", ("河川", "水系")),
    Theme("區域排水", "Regional drainage", "水利局", "生活安全及品質", "lines", "排水", ("排水",)),
    Theme("雨量站", "Rain gauges", "水利局", "生活安全及品質", "points", "雨量站", ("雨量", "氣象")),
    Theme("公有零售市場", "Public markets", "經濟發展局", "開創事業", "points", "市場", ("市場",)),
    Theme("產業園區", "Industrial parks", "經濟發展局", "投資理財", "zones", "產業園區", ("產業", "招商")),
    Theme("工廠登記", "Registered factories", "經濟發展局", "開創事業", "points", "工廠", ("工廠",), "year"),
    Theme("就業服務站", "Employment service centres", "勞工局", "求職及就業", "points", "就業服務站", ("就業", "職訓")),
    Theme("投票所", "Polling stations", "民政局", "選舉及投票", "points", "投票所", ("選舉", "投票"), "year"),
    Theme("戶政事務所", "Household registration offices", "民政局", "購屋及遷徙", "points", "戶政事務所", ("戶政",)),
    Theme("殯葬設施", "Funeral facilities", "民政局", "生命禮儀", "points", "殯儀館", ("殯葬", "墓園")),
    Theme("役男體檢醫院", "Conscript examination hospitals", "民政局", "服兵役", "points", "醫院", ("兵役", "體檢")),
    Theme("結婚登記服務處", "Marriage registration desks", "民政局", "婚姻", "points", "服務處", ("結婚", "戶政")),
    Theme("地政事務所", "Land offices", "地政局", "購屋及遷徙", "points", "地政事務所", ("地政",)),
    Theme("市地重劃區", "Land readjustment areas", "地政局", "購屋及遷徙", "zones", "重劃區", ("重劃", "地政")),
    Theme("土地使用現況", "Current land use", "地政局", "購屋及遷徙", "zones", "土地使用", ("土地使用",), "year"),
    Theme("社會住宅", "Social housing", "住宅發展工程處", "購屋及遷徙", "points", "社會住宅", ("住宅", "社宅"), "year"),
    Theme("捷運車站", "MRT stations", "捷運工程處", "交通及通訊", "points", "捷運站", ("捷運", "車站")),
    Theme("捷運路線", "MRT routes", "捷運工程處", "交通及通訊", "lines", "捷運路線", ("捷運",)),
    Theme("原住民族部落", "Indigenous communities", "原住民族事務委員會", "公共資訊", "points", "部落", ("原住民", "部落")),
    Theme("客家文化館舍", "Hakka cultural venues", "客家事務委員會", "休閒旅遊", "points", "文化館", ("客家",)),
    Theme("農會及產銷班", "Farmers' associations", "農業局", "開創事業", "points", "農會", ("農業",)),
    Theme("動物醫院", "Veterinary hospitals", "動物保護防疫處", "生活安全及品質", "points", "動物醫院", ("動物", "寵物")),
    Theme("退休人員服務據點", "Retiree service centres", "人事處", "退休", "points", "服務據點", ("退休",)),
    Theme("市有財產土地", "City-owned land parcels", "財政局", "投資理財", "zones", "市有地", ("市有地", "財產")),
    Theme("統計區", "Statistical areas", "主計處", "公共資訊", "zones", "統計區", ("統計",), "year"),
    Theme("市政府機關位置", "City government offices", "秘書處", "公共資訊", "points", "機關", ("機關",)),
    Theme("新聞公告欄位置", "Public notice boards", "新聞局", "公共資訊", "points", "公告欄", ("公告",)),
    Theme("1999陳情案件熱點", "1999 petition hotspots", "研究發展考核委員會", "公共資訊", "points", "陳情點", ("1999", "陳情")),
)
# fmt: on

YEARS_ROC = (105, 106, 107, 108, 109, 110, 111, 112)
