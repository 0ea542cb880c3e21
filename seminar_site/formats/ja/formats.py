# Dates as Japanese parents read them: 2026年1月31日（土）
DATE_FORMAT = "Y年n月j日（D）"
DATETIME_FORMAT = "Y年n月j日（D）G:i"
SHORT_DATE_FORMAT = "Y/m/d"
SHORT_DATETIME_FORMAT = "Y/m/d G:i"
TIME_FORMAT = "G:i"
