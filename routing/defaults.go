package routing

import (
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// DefaultRules is the rule set a new installation starts with (version 1): every
// category of domain.md, after the discipline rules' principle of management authority
// and 民发〔2016〕139号 for 民政. Admins add and retire rules from there.
func DefaultRules() RuleSet {
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	place := func(k UnitKind) Target { return Target{Relation: RelKindForDivision, Kind: k, Division: "place"} }
	regAuth := Target{Relation: RelRegistrationAuthority}
	orgRoles := []SubjectRole{RoleOrganization, RoleOrgStaff}
	rules := []Rule{
		{ID: "default-illegal-org", Name: "非法社会组织由活动所在地县级登记管理机关查处，抄送公安",
			Categories: []intake.Category{"illegal_org"}, Primary: place(KindCivilAffairs), Inform: []Target{place(KindPolice)}, Priority: 100},
		{ID: "default-dormant-org", Name: "僵尸型社会组织由其登记管理机关处理",
			Categories: []intake.Category{"dormant_org"}, SubjectKinds: orgRoles, Primary: regAuth, Priority: 100},
		{ID: "default-arbitrary-fees", Name: "社会组织乱收费由其登记管理机关处理，抄送市场监管",
			Categories: []intake.Category{"arbitrary_fees"}, SubjectKinds: orgRoles, Primary: regAuth, Inform: []Target{place(KindMarket)}, Priority: 100},
		{ID: "default-branch", Name: "分支（代表）机构违规由其登记管理机关处理",
			Categories: []intake.Category{"branch_misconduct"}, SubjectKinds: orgRoles, Primary: regAuth, Priority: 100},
		{ID: "default-nonprofit", Name: "违反非营利属性由登记管理机关处理，抄送财政",
			Categories: []intake.Category{"nonprofit_violation"}, SubjectKinds: orgRoles, Primary: regAuth,
			Inform: []Target{{Relation: RelKindForDivision, Kind: KindFinance, Division: "registration"}}, Priority: 100},
		{ID: "default-donation", Name: "捐赠款物违规由登记管理机关（慈善监管）处理",
			Categories: []intake.Category{"donation_misuse"}, SubjectKinds: orgRoles, Primary: regAuth, Priority: 100},
		{ID: "default-procurement", Name: "政府购买服务、项目招投标违规由财政部门处理，抄送业务主管单位和登记管理机关",
			Categories: []intake.Category{"procurement_fraud"}, Primary: place(KindFinance),
			Inform: []Target{{Relation: RelSupervisoryUnit}, regAuth}, Priority: 100},
		{ID: "default-governance-supervisor", Name: "内部治理违规由业务主管单位处理，抄送登记管理机关",
			Categories: []intake.Category{"governance_violation"}, SubjectKinds: orgRoles, Primary: Target{Relation: RelSupervisoryUnit},
			Inform: []Target{regAuth}, Priority: 110},
		{ID: "default-governance-registration", Name: "没有业务主管单位的组织，内部治理违规由登记管理机关处理",
			Categories: []intake.Category{"governance_violation"}, SubjectKinds: orgRoles, Primary: regAuth, Priority: 100},
		{ID: "default-org-by-place", Name: "无法从信用代码确定登记机关的社会组织问题，由举报地点的登记管理机关处理",
			Categories: []intake.Category{"dormant_org", "arbitrary_fees", "branch_misconduct", "nonprofit_violation", "donation_misuse", "governance_violation"},
			Primary:    place(KindCivilAffairs), Priority: 50},
		{ID: "default-official-stationed", Name: "部门工作人员的问题由派驻该部门的纪检监察组处理",
			Categories: []intake.Category{"official_discipline", "official_corruption", "formalism"}, SubjectKinds: []SubjectRole{RoleOfficial},
			Primary: Target{Relation: RelStationedAtEmployer}, Priority: 110},
		{ID: "default-department-stationed", Name: "对部门本身的举报由派驻该部门的纪检监察组处理",
			SubjectKinds: []SubjectRole{RoleDepartment}, Primary: Target{Relation: RelStationedAtEmployer}, Priority: 120},
		{ID: "default-official-level", Name: "党员干部、公职人员问题按管理权限由纪委监委处理",
			Categories: []intake.Category{"official_discipline", "official_corruption", "formalism"},
			Primary:    Target{Relation: RelDisciplineAtLevel}, Priority: 100},
		{ID: "default-department-level", Name: "对部门本身的举报按管理权限由纪委监委处理",
			SubjectKinds: []SubjectRole{RoleDepartment}, Primary: Target{Relation: RelDisciplineAtLevel}, Priority: 105},
		{ID: "default-other", Name: "“其他”类举报由举报地点的信访室分办",
			Categories: []intake.Category{"other"}, Primary: place(KindIntakeOffice), Priority: 100},
	}
	for i := range rules {
		rules[i].ValidFrom, rules[i].Version = from, 1
	}
	return RuleSet{Version: 1, Rules: rules}
}
