package routing

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/qingfeng-zj/qingfeng"
)

// errImportRunning refuses a second import while one runs in this process: two
// imports of units checked against each other's half-stored registry could leave it
// inconsistent, and a second organizations import would only compete for the store.
var errImportRunning = qingfeng.Errorf(qingfeng.ECONFLICT, "另一项名录导入正在进行，请等它完成后再试",
	"another registry import is running; try again when it has finished")

// ImportOrganizations imports an organizations file (ImportOrganizations) into the
// store while the server runs, and puts each stored batch into the engine's registry
// at once, so that routing uses it from the next case on. The file is read twice: a
// malformed one (CheckOrganizationsFile) is refused with EINVALID before anything is
// stored. Rows with bad values are rejected one by one through reject; the others are
// imported.
func (a *Admin) ImportOrganizations(ctx context.Context, r io.ReadSeeker, format string, reject func(row int, errs map[string]qingfeng.FieldError) error) (ImportStats, error) {
	if a.OrgImports == nil || a.UnitImports == nil {
		return ImportStats{}, errNoImportStore
	}
	if !a.importMu.TryLock() {
		return ImportStats{}, errImportRunning
	}
	defer a.importMu.Unlock()
	if err := CheckOrganizationsFile(r, format); err != nil {
		return ImportStats{}, malformedFile(err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return ImportStats{}, err
	}
	units, err := StoredUnits(ctx, a.UnitImports)
	if err != nil {
		return ImportStats{}, err
	}
	return ImportOrganizations(ctx, a.OrgImports, r, format, ImportOptions{Units: units, Reject: reject,
		Stored: func(orgs []Organization) { a.Engine.Orgs.Put(orgs...) }})
}

// ImportUnits imports a units file (ImportUnits, loading the defaults into an empty
// registry first as the server's first start does) and reloads the engine's unit
// registry at once. Like ImportOrganizations it checks the file first: a malformed file, or one that would leave the registry
// inconsistent, is refused with EINVALID and stores nothing.
func (a *Admin) ImportUnits(ctx context.Context, r io.ReadSeeker, format string, reject func(row int, errs map[string]qingfeng.FieldError) error) (ImportStats, error) {
	if a.UnitImports == nil {
		return ImportStats{}, errNoImportStore
	}
	if !a.importMu.TryLock() {
		return ImportStats{}, errImportRunning
	}
	defer a.importMu.Unlock()
	if err := ReadUnitsJSON(r, func(int, RegistryUnit, map[string]qingfeng.FieldError) error { return nil }); err != nil {
		return ImportStats{}, malformedFile(err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return ImportStats{}, err
	}
	st, err := ImportUnits(ctx, a.UnitImports, r, format, ImportOptions{Reject: reject, SeedDefaults: true})
	if st.Inserted+st.Updated+st.Seeded > 0 {
		if rerr := a.ReloadUnits(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return st, err
}

func malformedFile(err error) error {
	var qe *qingfeng.Error
	if errors.As(err, &qe) {
		return err
	}
	return &qingfeng.Error{Code: qingfeng.EINVALID, Message: "导入文件格式错误，未导入任何记录：" + err.Error(),
		English: "malformed file, nothing imported: " + err.Error()}
}

var errNoImportStore = errors.New("routing: imports need the organization and unit stores")

// SaveUnit creates one unit (create) or changes one stored unit, as a one-row units
// import (importUnitRows: NormalizeUnit, the reference and consistency checks, aliases
// and deadlines kept) under the import lock, and reloads the registry at once, so that
// the console's form and an uploaded file can never disagree. Creating an id that is
// stored is refused (ImportOptions.OnlyNew), changing one that is not is ENOTFOUND.
// The row's errors come back as EINVALID with the import's field names (id, name,
// kind, division, level, parent, stationed_at); a running import is ECONFLICT,
// worth retrying. It returns the unit as the registry now has it and whether it is new.
func (a *Admin) SaveUnit(ctx context.Context, u RegistryUnit, create bool) (RegistryUnit, bool, error) {
	if a.UnitImports == nil {
		return RegistryUnit{}, false, errNoImportStore
	}
	if !a.importMu.TryLock() {
		return RegistryUnit{}, false, errImportRunning
	}
	defer a.importMu.Unlock()
	u.ID = strings.TrimSpace(u.ID)
	if _, ok := a.Engine.Units.Get(u.ID); !ok && !create {
		return RegistryUnit{}, false, qingfeng.Errorf(qingfeng.ENOTFOUND, "单位不存在", "no such unit")
	}
	var rowErrs map[string]qingfeng.FieldError
	st, err := importUnitRows(ctx, a.UnitImports, []unitImportRow{{n: 1, unit: u}}, 0, ImportOptions{OnlyNew: create, SeedDefaults: true,
		Reject: func(_ int, errs map[string]qingfeng.FieldError) error { rowErrs = errs; return nil }})
	if st.Inserted+st.Updated+st.Seeded > 0 {
		if rerr := a.ReloadUnits(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	switch {
	case err != nil:
		return RegistryUnit{}, false, err
	case rowErrs != nil:
		return RegistryUnit{}, false, qingfeng.Invalid(rowErrs)
	}
	saved, _ := a.Engine.Units.Get(u.ID)
	return saved, st.Inserted > 0, nil
}
