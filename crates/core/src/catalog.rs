//! A snapshot of the physical schema, read once per scan.

use std::collections::{HashMap, HashSet};

use crate::ident::physical_name;
use crate::manifest::TableRef;

/// One relation (table, partitioned table, view, ...) as the catalog shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub columns: Vec<String>,
    /// Index and constraint names on this relation. Django's named constraints are sometimes
    /// constraints (`CHECK`, `UNIQUE`) and sometimes only indexes (a conditional
    /// `UniqueConstraint`), so both live in one namespace here.
    pub objects: Vec<String>,
    /// Plain (non-partial, non-expression) indexes by their key columns, in order, including
    /// those behind UNIQUE and PRIMARY KEY constraints.
    pub indexes: Vec<IndexShape>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexShape {
    pub unique: bool,
    pub columns: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    search_path: Vec<String>,
    relations: Vec<RelationIndex>,
    by_name: HashMap<(String, String), usize>,
}

#[derive(Debug)]
struct RelationIndex {
    relation: Relation,
    columns: HashSet<String>,
    objects: HashSet<String>,
}

impl Catalog {
    /// `search_path` is the list of schemas that unqualified names resolve against, in order
    /// (`current_schemas(false)` of the session Django uses).
    pub fn new(search_path: Vec<String>, relations: Vec<Relation>) -> Catalog {
        let mut by_name = HashMap::with_capacity(relations.len());
        let relations: Vec<RelationIndex> = relations
            .into_iter()
            .enumerate()
            .map(|(i, relation)| {
                by_name.insert((relation.schema.clone(), relation.name.clone()), i);
                RelationIndex {
                    columns: relation.columns.iter().cloned().collect(),
                    objects: relation.objects.iter().cloned().collect(),
                    relation,
                }
            })
            .collect();
        Catalog {
            search_path,
            relations,
            by_name,
        }
    }

    pub fn search_path(&self) -> &[String] {
        &self.search_path
    }

    /// Finds the relation a Django table name refers to, as PostgreSQL would resolve it.
    pub fn resolve(&self, table: &TableRef) -> Option<FoundRelation<'_>> {
        let name = physical_name(&table.name);
        let lookup = |schema: &str| {
            self.by_name
                .get(&(schema.to_owned(), name.to_owned()))
                .map(|&i| FoundRelation(&self.relations[i]))
        };
        match &table.schema {
            Some(schema) => lookup(physical_name(schema)),
            None => self.search_path.iter().find_map(|schema| lookup(schema)),
        }
    }
}

/// A relation found in the snapshot.
#[derive(Clone, Copy)]
pub struct FoundRelation<'a>(&'a RelationIndex);

impl FoundRelation<'_> {
    pub fn relation(&self) -> &Relation {
        &self.0.relation
    }

    pub fn has_column(&self, column: &str) -> bool {
        self.0.columns.contains(physical_name(column))
    }

    pub fn has_object(&self, name: &str) -> bool {
        self.0.objects.contains(physical_name(name))
    }

    /// Whether an index covers exactly `columns` (in any order), unique if `unique` is asked.
    /// `unique_together` and `index_together` are judged this way, because their constraint
    /// and index names are generated and differ between Django versions.
    pub fn has_index_on(&self, columns: &[&str], unique: bool) -> bool {
        let mut wanted: Vec<&str> = columns.iter().map(|c| physical_name(c)).collect();
        wanted.sort_unstable();
        self.0.relation.indexes.iter().any(|index| {
            let mut have: Vec<&str> = index.columns.iter().map(String::as_str).collect();
            have.sort_unstable();
            (index.unique || !unique) && have == wanted
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(schema: &str, name: &str, columns: &[&str]) -> Relation {
        Relation {
            schema: schema.into(),
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            objects: vec![],
            indexes: vec![],
        }
    }

    fn table(schema: Option<&str>, name: &str) -> TableRef {
        TableRef {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    #[test]
    fn unqualified_names_follow_the_search_path_in_order() {
        let catalog = Catalog::new(
            vec!["tenant".into(), "public".into()],
            vec![rel("public", "t", &["a"]), rel("tenant", "t", &["b"])],
        );
        let found = catalog.resolve(&table(None, "t")).unwrap();
        assert_eq!(found.relation().schema, "tenant");
        assert!(found.has_column("b"));
        assert!(!found.has_column("a"));
    }

    #[test]
    fn explicit_schema_is_exact_and_names_are_case_sensitive() {
        let catalog = Catalog::new(vec!["public".into()], vec![rel("audit", "Log", &[])]);
        assert!(catalog.resolve(&table(Some("audit"), "Log")).is_some());
        assert!(catalog.resolve(&table(Some("audit"), "log")).is_none());
        assert!(catalog.resolve(&table(None, "Log")).is_none());
    }

    #[test]
    fn index_shapes_match_by_column_set_and_uniqueness() {
        let mut relation = rel("public", "t", &["a", "b", "c"]);
        relation.indexes = vec![
            IndexShape {
                unique: true,
                columns: vec!["b".into(), "a".into()],
            },
            IndexShape {
                unique: false,
                columns: vec!["c".into()],
            },
        ];
        let catalog = Catalog::new(vec!["public".into()], vec![relation]);
        let found = catalog.resolve(&table(None, "t")).unwrap();
        assert!(found.has_index_on(&["a", "b"], true));
        assert!(found.has_index_on(&["a", "b"], false));
        assert!(found.has_index_on(&["c"], false));
        assert!(!found.has_index_on(&["c"], true));
        assert!(!found.has_index_on(&["a"], false));
    }

    #[test]
    fn long_names_resolve_to_their_truncated_form() {
        let long = "x".repeat(80);
        let catalog = Catalog::new(
            vec!["public".into()],
            vec![rel("public", &"x".repeat(63), &[&"c".repeat(63)])],
        );
        let found = catalog.resolve(&table(None, &long)).unwrap();
        assert!(found.has_column(&"c".repeat(70)));
    }
}
