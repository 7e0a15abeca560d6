package web

// CategoryExamples are the examples shown under each report category, drawn from the
// seeds' special campaigns (专项整治) and negative lists; keyed by category code.
var CategoryExamples = map[string]string{
	"illegal_org":          "未经登记以社会组织名义活动；被撤销登记后继续活动；筹备期间开展筹备以外的活动",
	"dormant_org":          "长期不开展活动、不参加年检年报的“僵尸型”社会组织",
	"arbitrary_fees":       "行业协会商会无依据向会员或企业收费、强制入会、只收费不服务",
	"branch_misconduct":    "分支（代表）机构滥用总会名义、违规收费、擅自评比表彰、资金“体外循环”、私设账户",
	"nonprofit_violation":  "抽逃开办资金、私设账外资金或“小金库”、违规关联交易、违规牟利",
	"donation_misuse":      "捐赠款物未入账、物资被挪用、虚报冒领项目资金、不开具捐赠票据",
	"procurement_fraud":    "政府购买服务或项目招投标中串标围标、“人情评审”、虚报服务数量",
	"governance_violation": "“三重一大”事项未经理事会集体决策、违规换届选举、负责人未经审核",
	"official_discipline":  "党员干部违规兼职取酬、公款吃喝、收受礼品礼金、公款旅游等违反中央八项规定精神的行为",
	"official_corruption":  "公职人员受贿、滥用职权、玩忽职守等职务违法犯罪",
	"formalism":            "形式主义、官僚主义，例如“校园中的形式主义”",
	"other":                "以上都不是的其他问题",
}

// StatusText says what a case's status means to the reporter, by status code.
var StatusText = map[string]string{
	"registered":     "您的举报已登记，正在等待承办单位审查是否受理。",
	"accepted":       "承办单位已受理您的举报，正在研究处置方式。",
	"not_accepted":   "承办单位决定不予受理（例如该事项应由法院、仲裁或其他机关处理，或内容无法核查）。如有新的线索，可以在下方补充。",
	"disposed":       "承办单位正在办理：可能是谈话函询、初步核实、暂存待查，或移送审查调查。办理期间请耐心等待，必要时工作人员会在这里向您了解情况。",
	"concluded":      "您的举报已办结，结果见下方。",
	"feedback_given": "您的举报已办结，承办单位已向您反馈结果。",
	"closed":         "您的举报已结案。",
	"duplicate":      "您反映的问题已有他人举报，已并入同一事项一并办理，进展与该事项相同。",
}

// OutcomeText puts a concluded case's finding (Outcome.Result) in a citizen's words.
var OutcomeText = map[string]string{
	"substantiated":   "经核查，您反映的问题属实，承办单位已依规依纪依法处理。",
	"partly":          "经核查，您反映的问题部分属实，属实部分已依规依纪依法处理。",
	"unsubstantiated": "经核查，您反映的问题不属实，或现有证据不足以认定。",
}

// NameClearedText is shown when the accused's name was cleared (澄清正名).
const NameClearedText = "承办单位已依规为被反映人澄清正名。如您有新的证据，仍可在下方补充。"
